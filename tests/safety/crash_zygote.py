"""Forks the writer processes that ``test_crash_loop.py`` kills (run as a script).

Importing chromadb takes seconds, so this process imports it once (it never opens a
client, so forking it is safe) and forks one worker per request read from stdin
(``{"kill_at": N or null}``). A worker recovers the store, reports what survived, then
runs transactions and dead-letter appends, printing an ``ack`` line after each one
returns, and SIGKILLs itself at the ``kill_at``-th profiled call (any Python or C call,
inside chromadb, SQLite or this project): a crash at a seeded, repeatable point.
Every message is one JSON line on stdout; the zygote reports each worker's exit.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import chromadb
from chromadb.config import Settings

from pytest_resilience import DeadLetterQueue
from pytest_resilience.chroma import recover, transaction

STORE, DLQ, NAME = sys.argv[1], sys.argv[2], sys.argv[3]
ROUNDS = 2  # committed transactions per worker, each with a doomed one and a DLQ append


class Doomed(Exception):
    """Raised inside a transaction that must roll back."""


def say(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def vector(rid: str) -> list[float]:
    return [float(len(rid)), float(sum(map(ord, rid)) % 97), 0.5, 0.25]


def state(collection: Any) -> dict[str, list[Any]]:
    got = collection.get(include=["metadatas", "documents"])
    return {rid: [got["documents"][i], got["metadatas"][i]]
            for i, rid in enumerate(got["ids"])}


def run(n: int, collection: Any, queue: DeadLetterQueue) -> None:
    """Committed transaction ``n``, acked; a doomed one; DLQ job ``j<n>``, acked."""
    with transaction(collection) as tx:
        tx.add([f"t{n}-a", f"t{n}-b"], [vector(f"t{n}-a"), vector(f"t{n}-b")],
               documents=[f"a{n}", f"b{n}"])
        tx.update(["counter"], metadatas=[{"n": n}])
        if n > 1:
            tx.delete([f"t{n - 1}-a"])
            tx.update([f"t{n - 1}-b"], [vector(f"t{n - 1}-b")], documents=[f"seen by {n}"])
    say({"ack": "tx", "n": n})
    try:
        with transaction(collection) as tx:
            tx.delete([f"t{n}-b", "counter"])
            tx.add([f"doomed-{n}"], [vector("doomed")], documents=["never"])
            raise Doomed
    except Doomed:
        pass
    queue.add({"n": n}, error="failed", job_id=f"j{n}")
    say({"ack": "dlq", "n": n})


def worker(kill_at: int | None) -> None:
    client = chromadb.PersistentClient(path=STORE, settings=Settings(anonymized_telemetry=False))
    report = recover(STORE, client=client)
    collection = client.get_collection(NAME, embedding_function=None)
    queue = DeadLetterQueue(DLQ)
    journals = sorted(os.listdir(os.path.join(STORE, ".resilience", "journal"))) \
        if os.path.isdir(os.path.join(STORE, ".resilience", "journal")) else []
    found = state(collection)
    say({"state": found, "jobs": sorted(j.job_id for j in queue.list()),
         "recovered": len(report.journals) + len(report.committed),
         "journals_left": journals})
    start = int(found["counter"][1]["n"])
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    sys.setprofile(profile)
    for n in range(start + 1, start + 1 + ROUNDS):
        run(n, collection, queue)
    sys.setprofile(None)
    queue.close()
    say({"done": calls})


def main() -> None:
    say({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                worker(request["kill_at"])
            except BaseException as exc:  # reported, then the worker ends
                say({"error": repr(exc)})
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        say({"exit": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
