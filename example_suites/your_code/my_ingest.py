"""Batch ingest into a Chroma collection, as a user would write it: a document set goes in
whole or not at all."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def ingest(collection: Any, ids: Sequence[str], documents: Sequence[str],
           embeddings: Sequence[Sequence[float]], batch: int = 2) -> None:
    """Correct: if a batch fails, the batches already written are removed again."""
    written: list[str] = []
    try:
        for i in range(0, len(ids), batch):
            collection.add(ids=list(ids[i:i + batch]), documents=list(documents[i:i + batch]),
                           embeddings=[list(e) for e in embeddings[i:i + batch]])
            written += ids[i:i + batch]
    except Exception:
        if written:
            collection.delete(ids=written)
        raise


def ingest_partially(collection: Any, ids: Sequence[str], documents: Sequence[str],
                     embeddings: Sequence[Sequence[float]], batch: int = 2) -> None:
    """The bug: a failing batch leaves the earlier ones behind, half a document set."""
    for i in range(0, len(ids), batch):
        collection.add(ids=list(ids[i:i + batch]), documents=list(documents[i:i + batch]),
                       embeddings=[list(e) for e in embeddings[i:i + batch]])
