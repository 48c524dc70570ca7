"""Open a store in a child process and describe what chromadb returns.

Chroma can answer a damaged store with a ``PanicException`` (a ``BaseException``), a
SIGSEGV or a hang on a lock, so the probe never runs in the caller's process. The child
works on a byte-for-byte copy, so opening (which may replay the log or re-run
migrations) never changes the store being judged.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_resilience.chroma._files import copy_store

__all__ = ["ProbeResult", "probe_store"]

_MARK = "RESILIENCE-PROBE "
_PAGE = 5000


@dataclass(frozen=True)
class ProbeResult:
    """What a child process saw: ``status`` is ok, clean_error, panic, crash or hang."""

    status: str
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None
    signal: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins (JSON)."""
        return {"status": self.status, "collections": self.collections,
                "error": self.error, "signal": self.signal}


def probe_store(
    path: Path | str,
    *,
    queries: dict[str, list[list[float]]] | None = None,
    n_queries: int = 5,
    k: int = 5,
    timeout: float = 60.0,
) -> ProbeResult:
    """Probe a copy of the store at ``path`` in a child process, bounded by ``timeout``.

    Each collection reports its count, a digest of every record (ids, embeddings,
    documents, metadatas) and the answers to ``queries`` (or to its first ``n_queries``
    stored embeddings, which are returned as the queries used).
    """
    with tempfile.TemporaryDirectory(prefix="resilience-probe-") as tmp:
        copy = Path(tmp) / "store"
        copy_store(Path(path), copy)
        request = json.dumps({"path": str(copy), "queries": queries,
                              "n_queries": n_queries, "k": k})
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pytest_resilience.chroma._probe"],
                input=request, capture_output=True, text=True, timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ProbeResult("hang", error=f"no answer within {timeout:g} s")
        finally:
            shutil.rmtree(copy, ignore_errors=True)
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return ProbeResult("crash", signal=name, error=f"killed by {name}")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(_MARK):
            answer = json.loads(line[len(_MARK):])
            return ProbeResult(answer["status"], answer.get("collections", {}),
                               answer.get("error"))
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return ProbeResult("clean_error", error=f"exit {done.returncode}: {tail}")


def _describe(path: str, queries: dict[str, list[list[float]]] | None,
              n_queries: int, k: int) -> dict[str, Any]:
    import chromadb
    import numpy as np
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=path,
                                       settings=Settings(anonymized_telemetry=False))
    found: dict[str, Any] = {}
    for listed in client.list_collections():
        name = listed.name
        collection: Any = client.get_collection(name, embedding_function=None)
        count = collection.count()
        records: list[tuple[str, bytes]] = []
        first: dict[str, list[float]] = {}
        offset = 0
        while True:
            page = collection.get(include=["embeddings", "documents", "metadatas"],
                                  limit=_PAGE, offset=offset)
            ids = page["ids"]
            embeddings = page["embeddings"]
            for i, rid in enumerate(ids):
                vector = np.asarray(embeddings[i], dtype=np.float32)
                blob = json.dumps([rid, page["documents"][i], page["metadatas"][i]],
                                  sort_keys=True, default=repr).encode() + vector.tobytes()
                records.append((rid, hashlib.sha256(blob).digest()))
                first[rid] = vector.tolist()
            offset += len(ids)
            if len(ids) < _PAGE:
                break
        records.sort()
        digest = hashlib.sha256(b"".join(h for _, h in records)).hexdigest()
        asked = (queries or {}).get(name)
        if asked is None and queries is None:
            asked = [first[rid] for rid, _ in records[:n_queries]]
        answers: list[list[str]] = []
        if asked and count:
            result = collection.query(query_embeddings=asked, n_results=min(k, count),
                                      include=["distances"])
            answers = [list(ids) for ids in result["ids"]]
        found[name] = {"count": count, "rows": len(records), "digest": digest,
                       "queries": asked or [], "answers": answers}
    return found


def _main() -> None:
    request = json.loads(sys.stdin.read())
    try:
        collections = _describe(request["path"], request["queries"],
                                request["n_queries"], request["k"])
        answer: dict[str, Any] = {"status": "ok", "collections": collections}
    except BaseException as exc:
        kind = "panic" if type(exc).__name__ == "PanicException" else "clean_error"
        answer = {"status": kind, "error": f"{type(exc).__name__}: {exc}"[:500]}
    sys.stdout.write(_MARK + json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    _main()
