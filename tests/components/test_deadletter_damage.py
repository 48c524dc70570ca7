"""DeadLetterQueue under damage: one bad row, a torn log tail, a damaged file.

Regressions for issue 14, defect 7: one undecodable row made ``list()`` and
``replay()`` raise ``JSONDecodeError`` for every job, a torn WAL tail dropped the last
write without a word, and a truncated file raised a raw ``sqlite3.DatabaseError``.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from pytest_resilience import (
    CorruptionDetected,
    DeadLetterQueue,
    QuarantinedJob,
    VirtualClock,
    recording,
)


def _tamper(db: Path, sql: str) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql)
        conn.commit()
    finally:
        conn.close()


def _queue_with(db: Path, ids: list[str], clock: VirtualClock) -> None:
    with DeadLetterQueue(db, clock=clock) as queue:
        for job in ids:
            queue.add({"job": job}, error="boom", job_id=job)
            clock.advance(1)


def test_a_damaged_row_is_quarantined_and_every_other_job_stays_usable(tmp_path: Path) -> None:
    clock = VirtualClock()
    db = tmp_path / "dlq.sqlite3"
    _queue_with(db, ["a", "b", "c", "d"], clock)
    _tamper(db, "UPDATE dead_jobs SET payload = '{\"job\": ' WHERE job_id = 'b'")
    _tamper(db, "UPDATE dead_jobs SET attempts = 'many' WHERE job_id = 'd'")
    with DeadLetterQueue(db, clock=clock, name="q") as queue, recording() as history:
        assert [j.job_id for j in queue.list()] == ["a", "c"]
        assert queue.quarantined() == [
            QuarantinedJob("b", "payload is not valid JSON (Expecting value: line 1 column 9 "
                                "(char 8))", clock.time()),
            QuarantinedJob("d", "attempts is str, not an integer", clock.time()),
        ]
        assert [e.attrs for e in history.select("deadletter.quarantined")] == [
            {"job_id": "b", "reason": "payload is not valid JSON (Expecting value: line 1 "
                                      "column 9 (char 8))"},
            {"job_id": "d", "reason": "attempts is str, not an integer"},
        ]
        delivered: list[object] = []
        result = queue.replay(delivered.append)
        assert result.replayed == ("a", "c")
        assert delivered == [{"job": "a"}, {"job": "c"}]
        assert queue.get("b") is None
        assert len(queue) == 0
    conn = sqlite3.connect(db)
    try:  # the damaged bytes are kept for salvage
        kept = conn.execute("SELECT job_id, payload FROM dead_jobs_quarantine "
                            "ORDER BY rowid").fetchall()
    finally:
        conn.close()
    assert kept == [("b", '{"job": '), ("d", '{"job": "d"}')]


def test_get_of_a_damaged_row_quarantines_it(tmp_path: Path) -> None:
    clock = VirtualClock()
    db = tmp_path / "dlq.sqlite3"
    _queue_with(db, ["a", "b"], clock)
    _tamper(db, "UPDATE dead_jobs SET payload = x'00ff' WHERE job_id = 'a'")
    with DeadLetterQueue(db, clock=clock) as queue:
        assert queue.get("a") is None
        assert [q.reason for q in queue.quarantined()] == ["payload is bytes, not JSON text"]
        assert [j.job_id for j in queue.list()] == ["b"]


def test_a_torn_log_tail_is_reported_not_silently_dropped(tmp_path: Path) -> None:
    clock = VirtualClock()
    live = tmp_path / "live" / "dlq.sqlite3"
    live.parent.mkdir()
    queue = DeadLetterQueue(live, clock=clock)
    queue.add({"n": 1}, error="e", job_id="kept")
    queue.add({"n": 2}, error="e", job_id="torn")
    copy = tmp_path / "dlq.sqlite3"
    shutil.copy(live, copy)  # the log still holds both commits: the queue is open
    shutil.copy(f"{live}-wal", f"{copy}-wal")
    queue.close()
    wal = Path(f"{copy}-wal")
    wal.write_bytes(wal.read_bytes()[:-100])  # the last frame was never fully written
    with recording() as history, DeadLetterQueue(copy, clock=clock, name="q") as reopened:
        assert reopened.torn is not None
        assert reopened.torn.reason == "a frame was cut short"
        assert [j.job_id for j in reopened.list()] == ["kept"]
    assert history.select("deadletter.torn")[0].attrs["reason"] == "a frame was cut short"


def test_a_clean_log_reports_nothing(tmp_path: Path) -> None:
    queue = DeadLetterQueue(tmp_path / "q.db", clock=VirtualClock())
    queue.add(1, error="e")
    again = DeadLetterQueue(tmp_path / "q.db", clock=VirtualClock())
    assert again.torn is None
    again.close()
    queue.close()


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_file_names_the_path_and_the_fix(tmp_path: Path, damage: str) -> None:
    db = tmp_path / "dlq.sqlite3"
    with DeadLetterQueue(db, clock=VirtualClock()) as queue:
        for i in range(300):
            queue.add({"payload": "x" * 200, "i": i}, error="e")
    size = db.stat().st_size
    if damage == "truncated":
        with db.open("r+b") as fh:
            fh.truncate(size // 2)
    else:
        db.write_bytes(b"not a database at all " * 100)
    with pytest.raises(CorruptionDetected) as info:  # at open: no job is read half-right
        DeadLetterQueue(db, clock=VirtualClock())
    reason = ("database disk image is malformed" if damage == "truncated"
              else "file is not a database")
    assert str(info.value) == (
        f"The dead-letter queue file {db} is damaged ({reason}), so its jobs cannot be "
        f"read safely. Restore it from a backup, or move it aside and salvage what is left "
        f"with `sqlite3 {db} .recover`; a queue opened at the same path afterwards starts "
        "empty.")
    assert info.value.path == str(db)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_payloads_and_attempts_that_cannot_be_stored_are_refused_up_front(
        tmp_path: Path) -> None:
    with DeadLetterQueue(tmp_path / "q.db", clock=VirtualClock()) as queue:
        deep: list[object] = []
        for _ in range(5000):
            deep = [deep]
        with pytest.raises(TypeError) as nested:
            queue.add(deep, error="e")
        assert str(nested.value).endswith(
            "is not JSON-serialisable (it nests deeper than 200 levels). Pass plain "
            "builtins (dict, list, str, numbers).")
        with pytest.raises(ValueError, match=r"^attempts=<int of 201 bits> is not a valid "
                                             r"count\."):
            queue.add(1, error="e", attempts=2**200)
        with pytest.raises(TypeError, match=r"^error=42 is not an error\."):
            queue.add(1, error=42)  # type: ignore[arg-type]
        assert len(queue) == 0
