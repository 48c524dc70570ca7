"""The rollback checker: after a failed transaction the store equals the store before it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_resilience.checks._select import HistoryLike, select
from pytest_resilience.checks._verdict import Verdict, describe, failed, passed, recorded
from pytest_resilience.kinds import CHROMA_ROLLBACK

__all__ = ["check_rollback", "snapshot"]

NAME = "rollback"
_SHOWN = 5


def snapshot(collection: Any) -> dict[str, tuple[Any, ...]]:
    """A comparable copy of a Chroma collection: id -> (document, metadata, embedding)."""
    data = collection.get(include=["documents", "metadatas", "embeddings"])
    ids = list(data.get("ids") or [])
    documents = data.get("documents")
    metadatas = data.get("metadatas")
    embeddings = data.get("embeddings")
    out: dict[str, tuple[Any, ...]] = {}
    for i, id_ in enumerate(ids):
        embedding = None if embeddings is None else tuple(float(x) for x in embeddings[i])
        metadata = None if metadatas is None else metadatas[i]
        out[id_] = (
            None if documents is None else documents[i],
            None if metadata is None else tuple(sorted(metadata.items())),
            embedding,
        )
    return out


def _ids(keys: set[str]) -> str:
    shown = sorted(keys)[:_SHOWN]
    more = len(keys) - len(shown)
    return ", ".join(repr(k) for k in shown) + (f" and {more} more" if more else "")


@recorded
def check_rollback(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    history: HistoryLike | None = None,
    source: str | None = None,
) -> Verdict:
    """Compare the store ``before`` a failed transaction with the store ``after`` it.

    Both are mappings id -> record (``snapshot(collection)`` makes one). With ``history``,
    the verdict names the ``chroma.rollback`` event(s) and fails if there was none.
    """
    rollbacks = [] if history is None else [
        e for e in select(history, "chroma.", source) if e.kind == CHROMA_ROLLBACK
    ]
    named = ("; rollback events: " + "; ".join(describe(e) for e in rollbacks)) if rollbacks \
        else ""
    missing = set(before) - set(after)
    extra = set(after) - set(before)
    changed = {k for k in set(before) & set(after) if before[k] != after[k]}
    problems = []
    if missing:
        problems.append(f"{len(missing)} record(s) gone ({_ids(missing)})")
    if extra:
        problems.append(f"{len(extra)} record(s) left behind ({_ids(extra)})")
    if changed:
        problems.append(f"{len(changed)} record(s) changed ({_ids(changed)})")
    if problems:
        return failed(NAME, "After the failed transaction the store differs from before it: "
                      + ", ".join(problems) + named + ".", rollbacks)
    if history is not None and not rollbacks:
        return failed(NAME, "The store is unchanged but the history holds no chroma.rollback "
                      "event: the transaction was never rolled back (or never failed).", [])
    return passed(NAME, f"The store after the failed transaction equals the {len(before)} "
                  "record(s) before it" + named + ".")
