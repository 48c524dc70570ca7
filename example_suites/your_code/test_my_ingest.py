"""A batch ingest that fails part-way leaves the collection as it was (real chromadb)."""

from __future__ import annotations

import pytest
from my_ingest import ingest, ingest_partially
from twins import twins

from faults.chroma import fail_during
from pytest_resilience import FaultInjected
from pytest_resilience.checks import check_rollback, snapshot


@pytest.mark.parametrize("ingest_fn", twins(ingest, ingest_partially, "half a batch stays"))
def test_a_failed_ingest_leaves_nothing_behind(ingest_fn, chroma_store):  # type: ignore[no-untyped-def]
    collection = chroma_store.collection()
    before = snapshot(collection)
    ids = [f"new-{i}" for i in range(6)]
    with fail_during(collection, "add", after=2), pytest.raises(FaultInjected):
        ingest_fn(collection, ids, [f"doc {i}" for i in ids], [[0.5] * 8 for _ in ids])
    check_rollback(before, snapshot(collection)).assert_ok()
