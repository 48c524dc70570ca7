"""Crash loop: a writer of Chroma transactions and dead-letter appends, SIGKILLed at
seeded random points 200 times; after each kill ``recover()`` and a reopen must show
every acknowledged record and no transaction half-applied.

Each round a fresh worker (forked from ``crash_zygote.py``, which imported chromadb
once) recovers the store, reports everything in it and in the queue, then commits two
transactions (each followed by a doomed one that rolls back and a dead-letter append)
and dies at the ``kill_at``-th Python or C call it makes: inside chromadb, SQLite, the
journal, a commit, a rollback, the queue. The store must equal the model state after
``k`` committed transactions, with ``k`` the last acknowledged one or the next (a
commit that finished just before its acknowledgement was written). Kill points are
drawn from ``random.Random(SEED)``, so a failure replays with the same points.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("chromadb", reason="the crash loop needs chromadb")
pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")

SEED = 14
KILLS = int(os.environ.get("RESILIENCE_CRASH_KILLS", "200"))
NAME = "crash"


def model(k: int) -> dict[str, list[Any]]:
    """The store after ``k`` committed transactions (see ``crash_zygote.run``)."""
    state: dict[str, list[Any]] = {"counter": ["counter", {"n": k}]}
    for i in range(1, k + 1):
        state[f"t{i}-b"] = [f"seen by {i + 1}" if i < k else f"b{i}", None]
    if k:
        state[f"t{k}-a"] = [f"a{k}", None]
    return state


class Zygote:
    """The forking helper process and its line protocol."""

    def __init__(self, store: Path, dlq: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("crash_zygote.py")), str(store),
             str(dlq), NAME],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.read() == {"ready": True}

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the zygote ended"
        return json.loads(line)  # type: ignore[no-any-return]

    def run(self, kill_at: int | None) -> list[dict[str, Any]]:
        """One worker's messages, up to and including its exit."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"kill_at": kill_at}) + "\n")
        self.proc.stdin.flush()
        messages = []
        while "exit" not in (message := self.read()):
            messages.append(message)
        return [*messages, message]

    def close(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.proc.stdout.close()


def _make_store(path: Path) -> None:
    import chromadb
    from chromadb.config import Settings

    from pytest_resilience.chroma import close_store

    client = chromadb.PersistentClient(path=str(path),
                                       settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection(  # no HNSW rewrite: chroma's own files stay
        NAME, embedding_function=None,      # crash-safe SQLite, so what is tested is ours
        configuration={"hnsw": {"sync_threshold": 100_000, "batch_size": 100_000}})
    collection.add(ids=["counter"], embeddings=[[0.0] * 4], documents=["counter"],
                   metadatas=[{"n": 0}])
    del collection, client
    close_store(path)


class Ledger:
    """What the workers acknowledged, and the checks every recovery must pass."""

    def __init__(self) -> None:
        self.acked_tx = 0
        self.acked_jobs: set[str] = set()
        self.tried_jobs: set[str] = set()

    def check(self, report: dict[str, Any], round_: int) -> int:
        found = report["state"]
        k = int(found["counter"][1]["n"])
        where = f"after kill {round_} (seed {SEED})"
        assert k in (self.acked_tx, self.acked_tx + 1), \
            f"{where}: store at transaction {k}, acknowledged {self.acked_tx}"
        assert found == model(k), f"{where}: transaction {k} half-applied or lost"
        assert report["journals_left"] == [], f"{where}: journals left after recover"
        jobs = set(report["jobs"])
        assert self.acked_jobs <= jobs, f"{where}: lost jobs {self.acked_jobs - jobs}"
        assert jobs <= self.tried_jobs | self.acked_jobs, f"{where}: unknown jobs"
        self.acked_tx = k
        return k

    def record(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            if message.get("ack") == "tx":
                self.acked_tx = message["n"]
                self.tried_jobs.add(f"j{message['n']}")
            elif message.get("ack") == "dlq":
                self.acked_jobs.add(f"j{message['n']}")


def test_sigkill_at_random_points_never_loses_or_half_applies(tmp_path: Path) -> None:
    store, dlq = tmp_path / "store", tmp_path / "dlq.sqlite3"
    _make_store(store)
    zygote = Zygote(store, dlq)
    ledger = Ledger()
    rng = random.Random(SEED)
    kills = rounds = 0
    try:
        calibration = zygote.run(None)
        ledger.check(calibration[0], 0)
        ledger.record(calibration)
        calls = next(m["done"] for m in calibration if "done" in m)
        assert calibration[-1] == {"exit": 0}
        while kills < KILLS:
            rounds += 1
            assert rounds < KILLS * 2, "too few rounds reached their kill point"
            messages = zygote.run(rng.randint(1, calls))
            assert "error" not in messages[0], messages[0]
            ledger.check(messages[0], kills)
            ledger.record(messages)
            exit_code = messages[-1]["exit"]
            assert exit_code in (0, -9), messages
            kills += exit_code == -9
        final = zygote.run(0)  # kill_at=0 never fires: recover, report, run cleanly
        ledger.check(final[0], kills)
    finally:
        zygote.close()
    assert ledger.acked_tx > 0
    assert kills == KILLS
