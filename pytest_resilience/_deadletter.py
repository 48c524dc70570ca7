"""``DeadLetterQueue``: failed jobs with their error, attempts and payload, in SQLite.

Each write is its own committed transaction in a WAL database with
``synchronous=FULL``, so a job reported as added survives the process being killed.
Payloads are stored as JSON. With ``storage=RedisStorage(...)`` the jobs live in Redis
instead (each change one atomic script), shared by every queue of the same name.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_resilience._clock import Clock, SystemClock
from pytest_resilience._events import emit
from pytest_resilience.kinds import DEADLETTER_ADDED, DEADLETTER_PURGED, DEADLETTER_REPLAYED

if TYPE_CHECKING:
    from pytest_resilience._storage import DeadLetterStore, Storage

__all__ = ["DeadJob", "DeadLetterQueue", "ReplayResult"]

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
        self.name = name
        self.clock: Clock = clock or SystemClock()
        self.storage = storage
        self._lock = threading.Lock()
        self._store: DeadLetterStore | None = None
        if storage is not None:
            self._store = storage.dead_letter_store(self)
        if (self._store is None) == (path is None):
            raise ValueError(
                f"path={path!r} with storage={storage!r}: pass a SQLite file path, or a "
                "shared storage such as RedisStorage, not both and not neither."
            )
        self.path = None if path is None else Path(path)
        if self.path is None:
            return
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(_SCHEMA)

    def add(
        self,
        payload: Any,
        *,
        error: BaseException | str,
        attempts: int = 1,
        job_id: str | None = None,
    ) -> str:
        """Store a failed job (``payload`` must be JSON-serialisable); returns its id."""
        try:
            body = json.dumps(payload)
        except TypeError as exc:
            raise TypeError(
                f"payload={payload!r} is not JSON-serialisable ({exc}). "
                "Pass plain builtins (dict, list, str, numbers)."
            ) from None
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
            raise ValueError(f"attempts={attempts!r} is not valid. Pass an integer >= 0.")
        message = error if isinstance(error, str) else repr(error)
        job = job_id or uuid.uuid4().hex
        if self._store is not None:
            self._store.add(job, body, message, attempts)
        else:
            now = self.clock.time()
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO dead_jobs VALUES (?, ?, ?, ?, ?, ?)",
                    (job, body, message, attempts, now, now),
                )
        emit(DEADLETTER_ADDED, self.name, self.clock, job_id=job, attempts=attempts,
             error=message)
        return job

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[DeadJob]:
        with self._lock:
            rows = self._db.execute(sql, tuple(params)).fetchall()
        return [DeadJob(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def list(self, *, limit: int | None = None) -> list[DeadJob]:
        """Jobs, oldest first."""
        if self._store is not None:
            return [DeadJob(r[0], json.loads(r[1]), *r[2:]) for r in self._store.rows(limit=limit)]
        sql = "SELECT * FROM dead_jobs ORDER BY added_at, rowid"
        return self._rows(sql + (" LIMIT ?" if limit is not None else ""),
                          () if limit is None else (limit,))

    def get(self, job_id: str) -> DeadJob | None:
        """The job ``job_id``, or ``None``."""
        if self._store is not None:
            rows = self._store.rows(job_id=job_id)
            return DeadJob(rows[0][0], json.loads(rows[0][1]), *rows[0][2:]) if rows else None
        found = self._rows("SELECT * FROM dead_jobs WHERE job_id = ?", (job_id,))
        return found[0] if found else None

    def __len__(self) -> int:
        if self._store is not None:
            return self._store.count()
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM dead_jobs").fetchone()[0])

    def _settle(self, job: DeadJob, exc: BaseException | None) -> bool:
        if self._store is not None:
            self._store.settle(job.job_id, None if exc is None else repr(exc))
        else:
            self._sqlite_settle(job, exc)
        if exc is None:
            emit(DEADLETTER_REPLAYED, self.name, self.clock, job_id=job.job_id,
                 attempts=job.attempts + 1, error=None)
        return exc is None

    def _sqlite_settle(self, job: DeadJob, exc: BaseException | None) -> None:
        with self._lock:
            if exc is None:
                self._db.execute("DELETE FROM dead_jobs WHERE job_id = ?", (job.job_id,))
            else:
                self._db.execute(
                    "UPDATE dead_jobs SET attempts = attempts + 1, error = ?, updated_at = ? "
                    "WHERE job_id = ?",
                    (repr(exc), self.clock.time(), job.job_id),
                )

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
        if self._store is not None:
            ids = None if job_ids is None else list(job_ids)
            gone = tuple(self._store.purge(older_than=older_than, job_ids=ids))
        else:
            gone = self._sqlite_purge(older_than, job_ids)
        for job in gone:
            emit(DEADLETTER_PURGED, self.name, self.clock, job_id=job, attempts=None, error=None)
        return len(gone)

    def _sqlite_purge(self, older_than: float | None, job_ids: Iterable[str] | None
                      ) -> tuple[str, ...]:
        clauses: list[str] = []
        params: list[Any] = []
        if older_than is not None:
            clauses.append("added_at <= ?")
            params.append(self.clock.time() - older_than)
        if job_ids is not None:
            ids = list(job_ids)
            clauses.append(f"job_id IN ({', '.join('?' * len(ids)) or 'NULL'})")
            params.extend(ids)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
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
