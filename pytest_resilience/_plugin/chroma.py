"""Fixtures of the Chroma family: ``chroma_store`` (issue 5).

chromadb is imported only inside the fixtures, so loading the plugin stays light.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_resilience._plugin.state import reset_after_each_plan

if TYPE_CHECKING:
    from pytest_resilience.chroma._store import ChromaStore


@pytest.fixture(scope="session")
def _chroma_golden_store(tmp_path_factory: pytest.TempPathFactory) -> ChromaStore:
    """Built once per session; each test gets a byte-for-byte copy."""
    pytest.importorskip("chromadb", reason="chroma_store needs chromadb")
    from pytest_resilience.chroma._store import make_store

    return make_store(tmp_path_factory.mktemp("chroma-golden") / "store")


@pytest.fixture
def chroma_store(request: pytest.FixtureRequest, _chroma_golden_store: ChromaStore,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaStore]:
    """A closed, sealed ``PersistentClient`` store in a temp dir: 300 records of dim 8.

    Collection ``memories`` (``sync_threshold=100``, so the vector files exist). Use
    ``.collection()`` to write, ``.close()`` before copying or corrupting the files,
    ``.records`` for what was written. Skips when chromadb is not installed. In a chaos
    test the store is put back as it was after each plan.
    """
    from pytest_resilience.chroma._store import ChromaStore

    golden = _chroma_golden_store
    path = tmp_path_factory.mktemp("chroma") / "store"
    shutil.copytree(golden.path, path)
    store = ChromaStore(path, golden.name, golden.dim, dict(golden.records))

    def start() -> Callable[[], None]:
        def reset() -> None:  # the same path, so families holding it keep working
            store.close()
            shutil.rmtree(path)
            shutil.copytree(golden.path, path)
            store.records = dict(golden.records)

        return reset

    reset_after_each_plan(request.node, start)
    try:
        yield store
    finally:
        store.close()
