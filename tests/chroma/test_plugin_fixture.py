"""The ``chroma_store`` fixture, as a user's suite sees it (pytester)."""

from __future__ import annotations

import pytest

pytest.importorskip("chromadb", reason="chroma_store needs chromadb")

RESILIENCE = ("-p", "resilience")


def test_chroma_store_fixture_gives_a_sealed_populated_store(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from faults.chroma import corrupt
        from pytest_resilience.chroma import verify_store, transaction

        pytestmark = pytest.mark.filterwarnings(
            "ignore:legacy embedding function config:DeprecationWarning")

        def test_populated(chroma_store):
            assert chroma_store.collection().count() == 300
            assert chroma_store.snapshot() == chroma_store.records

        def test_writes_do_not_leak_between_tests(chroma_store):
            col = chroma_store.collection()
            with transaction(col) as tx:
                tx.delete(["rec-00000"])
            assert col.count() == 299

        def test_fresh_copy_each_test(chroma_store):
            assert chroma_store.collection().count() == 300

        def test_corrupt_then_detect(chroma_store):
            chroma_store.close()
            with corrupt(chroma_store.path, "length-bitflip", seed=1):
                assert not verify_store(chroma_store.path, probe=False).ok
            assert verify_store(chroma_store.path, probe=False).ok
        """
    )
    result = pytester.runpytest(*RESILIENCE)
    result.assert_outcomes(passed=4)
