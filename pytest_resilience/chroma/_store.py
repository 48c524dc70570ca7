"""``ChromaStore``: a populated, sealed PersistentClient store for tests (``chroma_store``)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_resilience.chroma._files import close_store
from pytest_resilience.chroma._integrity import seal_store

__all__ = ["ChromaStore", "make_store"]

Record = tuple[tuple[float, ...], str | None, dict[str, Any] | None]


@dataclass
class ChromaStore:
    """A store on disk, its collection name and the records it was filled with.

    ``collection()`` opens it (one cached client); ``close()`` drops the client so the
    files can be copied, corrupted or restored; ``snapshot()`` reads every record back.
    """

    path: Path
    name: str
    dim: int
    records: dict[str, Record]
    _client: Any = field(default=None, repr=False)

    def client(self) -> Any:
        """A ``chromadb.PersistentClient`` on the store (cached until ``close()``)."""
        if self._client is None:
            import chromadb
            from chromadb.config import Settings

            self._client = chromadb.PersistentClient(
                path=str(self.path), settings=Settings(anonymized_telemetry=False))
        return self._client

    def collection(self) -> Any:
        """The populated collection (no embedding function: pass embeddings)."""
        return self.client().get_collection(self.name, embedding_function=None)

    def close(self) -> None:
        """Drop the client and chroma's cache of it."""
        self._client = None
        close_store(self.path)

    def snapshot(self) -> dict[str, Record]:
        """Every record now in the collection: ``{id: (embedding, document, metadata)}``."""
        got = self.collection().get(include=["embeddings", "documents", "metadatas"])
        return {
            rid: (tuple(float(x) for x in got["embeddings"][i]), got["documents"][i],
                  got["metadatas"][i])
            for i, rid in enumerate(got["ids"])
        }


def make_store(
    path: Path | str,
    *,
    records: int = 300,
    dim: int = 8,
    name: str = "memories",
    seed: int = 0,
    sync_threshold: int = 100,
    seal: bool = True,
) -> ChromaStore:
    """Create a store at ``path`` with ``records`` seeded records, close it and seal it.

    Embeddings are float32-exact, so ``snapshot()`` compares equal to ``records``.
    """
    import chromadb
    from chromadb.config import Settings

    rng = random.Random(seed)
    data: dict[str, Record] = {}
    for i in range(records):
        vector = tuple(float(int(rng.random() * 2**16) / 2**16) for _ in range(dim))
        meta: dict[str, Any] = {"n": i, "significance": round(rng.random(), 3),
                                "tags": "seed,test"}
        data[f"rec-{i:05d}"] = (vector, f"document {i}", meta)
    client = chromadb.PersistentClient(path=str(path),
                                       settings=Settings(anonymized_telemetry=False))
    collection: Any = client.create_collection(
        name, embedding_function=None,
        configuration={"hnsw": {"sync_threshold": sync_threshold}})
    ids = list(data)
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        collection.add(ids=chunk, embeddings=[list(data[i][0]) for i in chunk],
                       documents=[data[i][1] for i in chunk],
                       metadatas=[data[i][2] for i in chunk])
    store = ChromaStore(Path(path), name, dim, data)
    del collection, client
    store.close()
    if seal:
        seal_store(path)
    return store
