"""``DeadLetterQueue``: failed jobs with their error, attempts and payload, in SQLite.

Each write is its own committed transaction in a WAL database with
``synchronous=FULL``, so a job reported as added survives the process being killed.
Payloads are stored as JSON. With ``storage=RedisStorage(...)`` the jobs live in Redis
instead (each change one atomic script), shared by every queue of the same name.

Damage never blocks the queue: a row that cannot be read (bad JSON, wrong column
types) is moved to ``dead_jobs_quarantine`` and reported (``quarantined()``, event
``deadletter.quarantined``) while every other job stays listable and replayable; a
torn write-ahead-log tail (a write that never finished) is reported at open
(``torn``, event ``deadletter.torn``); a damaged database file raises
``CorruptionDetected`` naming the file and the fix.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_resilience import _validate
from pytest_resilience._clock import Clock
from pytest_resilience._errors import CorruptionDetected
from pytest_resilience._events import emit
from pytest_resilience._sqlite_wal import WalTail, torn_tail
from pytest_resilience.kinds import (
    DEADLETTER_ADDED,
    DEADLETTER_PURGED,
    DEADLETTER_QUARANTINED,
    DEADLETTER_REPLAYED,
    DEADLETTER_TORN,
)

if TYPE_CHECKING:
    from pytest_resilience._storage import DeadLetterStore, Storage

__all__ = ["DeadJob", "DeadLetterQueue", "QuarantinedJob", "ReplayResult"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_jobs (
    job_id TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    added_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
"""
_QUARANTINE = """
CREATE TABLE IF NOT EXISTS dead_jobs_quarantine (
    job_id, payload, error, attempts, added_at, updated_at,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
)
"""
_COLUMNS = "rowid, job_id, payload, error, attempts, added_at, updated_at"
#: Nesting deeper than this is refused on ``add`` (and is what json can read back).
MAX_DEPTH = 200
_MAX_INT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class DeadJob:
    """One dead-lettered job; times are the clock's wall seconds."""

    job_id: str
    payload: Any
    error: str
    attempts: int
    added_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class QuarantinedJob:
    """A row that could not be read: its id (``None`` if that was damaged), why, when."""

    job_id: str | None
    reason: str
    quarantined_at: float


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """Which jobs a replay delivered (and removed) and which failed again (and stayed)."""

    replayed: tuple[str, ...]
    failed: tuple[str, ...]


class DeadLetterQueue:
    """A persistent queue of failed jobs: ``add``, ``list``, ``replay``, ``purge``.

    Safe to share between threads; one file may be opened by several processes. Pass
    ``path`` (a SQLite file) or ``storage`` (e.g. ``RedisStorage``), not both.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        name: str = "deadletter",
        clock: Clock | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.name = _validate.text(name, "name", what="a queue name")
        self.clock: Clock = _validate.clock(clock)
        self.storage = _validate.storage(storage)
        self._lock = threading.Lock()
        #: The write that never finished, found in the log at open (``None``: none).
        self.torn: WalTail | None = None
        self._store: DeadLetterStore | None = None
        if storage is not None:
            self._store = storage.dead_letter_store(self)
        if (self._store is None) == (path is None):
            raise ValueError(
                f"path={_validate.show(path)} with storage={_validate.show(storage)}: pass a "
                "SQLite file path, or a shared storage such as RedisStorage, not both and not "
                "neither."
            )
        if path is not None and not isinstance(path, str | os.PathLike):
            raise TypeError(f"path={_validate.show(path)} is not a file path. Pass the "
                            "SQLite file to keep the queue in.")
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self._db = self._open(self.path)

    def _open(self, path: Path) -> sqlite3.Connection:
        """Connect, create the tables and look for a torn log tail; damage is named."""
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=5000")
            db.execute("BEGIN IMMEDIATE")  # no live writer is halfway through a frame now
            try:
                self.torn = torn_tail(path)  # before our first write reuses that space
                db.execute(_SCHEMA)
                db.execute(_QUARANTINE)
                db.execute("SELECT COUNT(*) FROM dead_jobs").fetchone()
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if db is not None:
                db.close()
            self._raise_if_damaged(exc)
            raise
        if self.torn is not None:
            emit(DEADLETTER_TORN, self.name, self.clock, path=self.torn.path,
                 frames=self.torn.frames, bytes=self.torn.bytes, reason=self.torn.reason)
        return db

    def _raise_if_damaged(self, exc: sqlite3.DatabaseError) -> None:
        """Raise ``CorruptionDetected`` (from ``exc``) when ``exc`` says the file is damaged."""
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF not in (sqlite3.SQLITE_CORRUPT,
                                                     sqlite3.SQLITE_NOTADB):
            return
        raise CorruptionDetected(
            f"The dead-letter queue file {self.path} is damaged ({exc}), so its jobs cannot "
            "be read safely. Restore it from a backup, or move it aside and salvage what is "
            f"left with `sqlite3 {self.path} .recover`; a queue opened at the same path "
            "afterwards starts empty.",
            findings=(str(exc),), path=str(self.path)) from exc

    def _run(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Execute one statement under the lock; a damaged file raises ``CorruptionDetected``."""
        try:
            with self._lock:
                return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            self._raise_if_damaged(exc)
            raise

    def add(
        self,
        payload: Any,
        *,
        error: BaseException | str,
        attempts: int = 1,
        job_id: str | None = None,
    ) -> str:
        """Store a failed job (``payload`` must be JSON-serialisable); returns its id."""
        body = _encode(payload)
        attempts = _validate.count(attempts, "attempts", low=0, high=_MAX_INT)
        if job_id is not None:
            _validate.text(job_id, "job_id", what="a job id",
                           accepted="a non-empty string, or None for a fresh id")
        if not isinstance(error, str | BaseException):
            raise TypeError(f"error={_validate.show(error)} is not an error. Pass the "
                            "exception, or a message string.")
        message = error if isinstance(error, str) else repr(error)
        job = job_id or uuid.uuid4().hex
        if self._store is not None:
            self._store.add(job, body, message, attempts)
        else:
            now = self.clock.time()
            self._run("INSERT OR REPLACE INTO dead_jobs VALUES (?, ?, ?, ?, ?, ?)",
                      (job, body, message, attempts, now, now))
        emit(DEADLETTER_ADDED, self.name, self.clock, job_id=job, attempts=attempts,
             error=message)
        return job

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[DeadJob]:
        """The rows ``sql`` selects, damaged ones quarantined (and the query rerun)."""
        for _ in range(3):
            jobs: list[DeadJob] = []
            bad: list[tuple[Any, str]] = []
            for row in self._run(sql, params):
                job = _decode(row)
                if isinstance(job, str):
                    bad.append((row, job))
                else:
                    jobs.append(job)
            if not bad:
                return jobs
            self._quarantine(bad)
        return jobs  # rows damaged while we looked: report what reads now

    def _quarantine(self, bad: Sequence[tuple[Any, str]]) -> None:
        now = self.clock.time()
        moved: list[tuple[str | None, str]] = []
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for row, reason in bad:
                        gone = self._db.execute(
                            "DELETE FROM dead_jobs WHERE rowid = ? RETURNING " + _COLUMNS[7:],
                            (row[0],)).fetchall()
                        if gone:  # another process may have quarantined it first
                            self._db.execute(
                                "INSERT INTO dead_jobs_quarantine VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (*gone[0], reason, now))
                            moved.append((_job_id(row[1]), reason))
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._raise_if_damaged(exc)
            raise
        for job_id, reason in moved:
            emit(DEADLETTER_QUARANTINED, self.name, self.clock, job_id=job_id,
                 reason=reason)

    def quarantined(self) -> list[QuarantinedJob]:
        """Rows moved out of the queue because they could not be read, oldest first.

        Their raw columns stay in the ``dead_jobs_quarantine`` table for salvage.
        """
        if self._store is not None:
            return []  # a shared store's rows are written whole by one script
        rows = self._run("SELECT job_id, reason, quarantined_at FROM dead_jobs_quarantine "
                         "ORDER BY quarantined_at, rowid")
        return [QuarantinedJob(_job_id(r[0]), str(r[1]), float(r[2])) for r in rows]

    def list(self, *, limit: int | None = None) -> list[DeadJob]:
        """Jobs, oldest first (rows that cannot be read are quarantined, not returned)."""
        if limit is not None:
            limit = _validate.count(limit, "limit", low=0, high=_MAX_INT,
                                    accepted="an integer >= 0, or None for every job")
        if self._store is not None:
            return [DeadJob(r[0], json.loads(r[1]), *r[2:]) for r in self._store.rows(limit=limit)]
        sql = f"SELECT {_COLUMNS} FROM dead_jobs ORDER BY added_at, rowid"
        return self._rows(sql + (" LIMIT ?" if limit is not None else ""),
                          () if limit is None else (limit,))

    def get(self, job_id: str) -> DeadJob | None:
        """The job ``job_id``, or ``None`` (also when its row had to be quarantined)."""
        if not isinstance(job_id, str):
            raise TypeError(f"job_id={_validate.show(job_id)} is not a job id. Pass the "
                            "string add() returned.")
        if self._store is not None:
            rows = self._store.rows(job_id=job_id)
            return DeadJob(rows[0][0], json.loads(rows[0][1]), *rows[0][2:]) if rows else None
        found = self._rows(f"SELECT {_COLUMNS} FROM dead_jobs WHERE job_id = ?", (job_id,))
        return found[0] if found else None

    def __len__(self) -> int:
        if self._store is not None:
            return self._store.count()
        return int(self._run("SELECT COUNT(*) FROM dead_jobs")[0][0])

    def _settle(self, job: DeadJob, exc: BaseException | None) -> bool:
        if self._store is not None:
            self._store.settle(job.job_id, None if exc is None else repr(exc))
        elif exc is None:
            self._run("DELETE FROM dead_jobs WHERE job_id = ?", (job.job_id,))
        else:
            self._run(
                "UPDATE dead_jobs SET attempts = MIN(attempts + 1, ?), error = ?, "
                "updated_at = ? WHERE job_id = ?",
                (_MAX_INT, repr(exc), self.clock.time(), job.job_id),
            )
        if exc is None:
            emit(DEADLETTER_REPLAYED, self.name, self.clock, job_id=job.job_id,
                 attempts=job.attempts + 1, error=None)
        return exc is None

    def replay(self, handler: Callable[[Any], object], *, limit: int | None = None) -> ReplayResult:
        """Call ``handler(payload)`` for each job, oldest first; delivered jobs are removed,
        failing ones stay with ``attempts`` + 1 and the new error."""
        done: list[str] = []
        failed: list[str] = []
        for job in self.list(limit=limit):
            try:
                handler(job.payload)
            except Exception as exc:
                self._settle(job, exc)
                failed.append(job.job_id)
            else:
                self._settle(job, None)
                done.append(job.job_id)
        return ReplayResult(tuple(done), tuple(failed))

    async def areplay(
        self, handler: Callable[[Any], Awaitable[object]], *, limit: int | None = None
    ) -> ReplayResult:
        """``replay`` with an async handler."""
        done: list[str] = []
        failed: list[str] = []
        for job in self.list(limit=limit):
            try:
                await handler(job.payload)
            except Exception as exc:
                self._settle(job, exc)
                failed.append(job.job_id)
            else:
                self._settle(job, None)
                done.append(job.job_id)
        return ReplayResult(tuple(done), tuple(failed))

    def purge(
        self, *, older_than: float | None = None, job_ids: Iterable[str] | None = None
    ) -> int:
        """Delete jobs (all, those added ``older_than`` seconds ago or more, or by id);
        returns how many were removed."""
        if older_than is not None:
            older_than = _validate.seconds(older_than, "older_than",
                                           accepted="seconds >= 0, or None")
        ids: Sequence[str] | None = None
        if job_ids is not None:
            if isinstance(job_ids, str) or not isinstance(job_ids, Iterable):
                raise TypeError(f"job_ids={_validate.show(job_ids)} is not a collection of "
                                "job ids. Pass e.g. [job_id], or None.")
            ids = list(job_ids)
        if self._store is not None:
            gone = tuple(self._store.purge(older_than=older_than, job_ids=ids))
        else:
            gone = self._sqlite_purge(older_than, ids)
        for job in gone:
            emit(DEADLETTER_PURGED, self.name, self.clock, job_id=job, attempts=None, error=None)
        return len(gone)

    def _sqlite_purge(self, older_than: float | None, ids: Sequence[str] | None
                      ) -> tuple[str, ...]:
        clauses: list[str] = []
        params: list[Any] = []
        if older_than is not None:
            clauses.append("added_at <= ?")
            params.append(self.clock.time() - older_than)
        if ids is not None:
            clauses.append(f"job_id IN ({', '.join('?' * len(ids)) or 'NULL'})")
            params.extend(ids)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        try:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    query = f"SELECT job_id FROM dead_jobs{where}"
                    gone = [r[0] for r in self._db.execute(query, params)]
                    self._db.execute(f"DELETE FROM dead_jobs{where}", params)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._raise_if_damaged(exc)
            raise
        return tuple(gone)

    def close(self) -> None:
        """Close the database connection (a shared storage stays open: close it)."""
        if self.path is None:
            return
        with self._lock:
            self._db.close()

    def __enter__(self) -> DeadLetterQueue:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"storage={self.storage!r}" if self.path is None else f"path={str(self.path)!r}"
        return f"DeadLetterQueue({where}, name={self.name!r})"


def _depth_ok(value: Any) -> bool:
    """Whether ``value`` nests at most ``MAX_DEPTH`` lists/dicts deep (no recursion;
    each container is looked into once, so a cycle ends the walk)."""
    stack, seen = [(value, 0)], set()
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list | tuple) and id(item) not in seen:
            if level >= MAX_DEPTH:
                return False
            seen.add(id(item))
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return True


def _encode(payload: Any) -> str:
    problem = None if _depth_ok(payload) else f"it nests deeper than {MAX_DEPTH} levels"
    if problem is None:
        try:
            return json.dumps(payload)
        except (TypeError, ValueError, RecursionError) as exc:
            problem = str(exc)
    raise TypeError(
        f"payload={_validate.show(payload)} is not JSON-serialisable ({problem}). "
        "Pass plain builtins (dict, list, str, numbers)."
    )


def _job_id(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _decode(row: tuple[Any, ...]) -> DeadJob | str:
    """The row as a ``DeadJob``, or the reason it cannot be one."""
    _rowid, job_id, payload, error, attempts, added_at, updated_at = row
    if not isinstance(job_id, str):
        return f"job_id is {type(job_id).__name__}, not text"
    if not isinstance(payload, str):
        return f"payload is {type(payload).__name__}, not JSON text"
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        return f"payload is not valid JSON ({exc})"
    if not isinstance(error, str):
        return f"error is {type(error).__name__}, not text"
    if isinstance(attempts, bool) or not isinstance(attempts, int):
        return f"attempts is {type(attempts).__name__}, not an integer"
    for column, stamp in (("added_at", added_at), ("updated_at", updated_at)):
        if isinstance(stamp, bool) or not isinstance(stamp, int | float):
            return f"{column} is {type(stamp).__name__}, not a time"
    return DeadJob(job_id, value, error, attempts, float(added_at), float(updated_at))
