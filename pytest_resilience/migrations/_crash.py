"""The crash-point explorer: crash each migration before every statement it runs and
check that the database comes back at exactly the old or the new version.

For each migration: build the database at the previous version (seeded with rows), run
the upgrade once to count its statements, then for every statement ``k`` run it again on
a fresh copy with a crash before statement ``k`` (an exception raised from the runner's
hook; on a seeded sample, a child process that SIGKILLs itself there). After each crash
the database is reopened: its version must be the old or the new one, its schema that
version's, its rows that version's (no seeded row lost), and upgrading again must reach
the new version. Then up -> down -> up must leave schema and rows as they were.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pytest_resilience import Clock, emit, validate
from pytest_resilience.kinds import MIGRATION_CRASH_POINT, MIGRATION_ROUND_TRIP
from pytest_resilience.migrations import _checks
from pytest_resilience.migrations._backends import Backend, SQLiteBackend
from pytest_resilience.migrations._dialects import Snapshot, execute, quote
from pytest_resilience.migrations._files import MigrationSet
from pytest_resilience.migrations._runner import Point
from pytest_resilience.migrations._sources import Source, SqlSource, Step

__all__ = ["CrashExplorer", "CrashFinding", "CrashInjected", "CrashReport", "MigrationReport",
           "auto_seed", "explore_crashes"]

Seed = Callable[[Any, "str | None"], None]
Mode = Literal["exception", "sigkill", "round-trip"]
_CHILD_TIMEOUT = 120.0
#: Exit status of a child whose crash point was never reached.
CHILD_MISSED = 3


class CrashInjected(BaseException):
    """Raised from the runner's hook to crash a migration; a ``BaseException`` so that no
    ``except Exception`` in migration code can swallow it."""


@dataclass(frozen=True)
class CrashFinding:
    """Why one crash point (or a round trip) left the database wrong."""

    version: str
    migration: str
    mode: Mode
    problems: tuple[str, ...]
    point: Point | None = None
    index: int = -1

    def __str__(self) -> str:
        if self.mode == "round-trip":
            where = "up -> down -> up"
        else:
            crash = "SIGKILL" if self.mode == "sigkill" else "crash"
            where = f"{crash} before {self.point.describe() if self.point else '?'}"
        return f"{self.migration}: {where} => " + "; ".join(self.problems)


@dataclass(frozen=True)
class MigrationReport:
    """The crash points of one migration and what went wrong at them."""

    version: str
    migration: str
    points: tuple[Point, ...]
    crashed: int
    killed: int
    findings: tuple[CrashFinding, ...]
    transactional: bool = True
    notes: tuple[str, ...] = ()

    @property
    def crash_safe(self) -> bool:
        """No crash point and no round trip found a problem."""
        return not self.findings

    def explain(self) -> str:
        """One paragraph: the verdict, the points, then each finding on its own line."""
        verdict = "crash-safe" if self.crash_safe else "NOT crash-safe"
        mode = "" if self.transactional else " (declared non-transactional)"
        lines = [f"{self.migration}{mode}: {verdict}; {len(self.points)} crash points, "
                 f"{self.crashed} crashed by exception, {self.killed} by SIGKILL"]
        lines += [f"  {f}" for f in self.findings]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True)
class CrashReport:
    """Every migration's report, in apply order."""

    migrations: tuple[MigrationReport, ...]

    @property
    def crash_safe(self) -> bool:
        """Every migration is crash-safe."""
        return all(m.crash_safe for m in self.migrations)

    @property
    def unsafe(self) -> list[str]:
        """Labels of the migrations that are not crash-safe."""
        return [m.migration for m in self.migrations if not m.crash_safe]

    @property
    def findings(self) -> list[CrashFinding]:
        """Every finding, in apply order."""
        return [f for m in self.migrations for f in m.findings]

    @property
    def points(self) -> int:
        """Crash points over all migrations."""
        return sum(len(m.points) for m in self.migrations)

    def explain(self) -> str:
        """The whole report as text."""
        head = (f"{len(self.migrations)} migrations, {self.points} crash points: "
                + ("all crash-safe" if self.crash_safe else
                   f"NOT crash-safe: {', '.join(self.unsafe)}"))
        return "\n".join([head, *(m.explain() for m in self.migrations)])

    __str__ = explain


# -- seeding -------------------------------------------------------------------------------
def _value(sql_type: str, n: int) -> Any:
    t = sql_type.upper()
    if "INT" in t or "SERIAL" in t:
        return n
    if any(k in t for k in ("REAL", "FLOA", "DOUB", "NUMERIC", "DEC")):
        return n + 0.5
    if "BOOL" in t:
        return n % 2 == 0
    if "BLOB" in t or "BYTEA" in t:
        return f"seed-{n}".encode()
    if "TIMESTAMP" in t or "DATETIME" in t:
        return f"2024-01-01 00:00:{n % 60:02d}"
    if "DATE" in t:
        return "2024-01-01"
    return f"seed-{n}"


def auto_seed(conn: Any, backend: Backend, *, exclude: Sequence[str] = (),
              rows: int = 2, start: int = 1) -> list[str]:
    """Insert ``rows`` rows into each table (values by column type, generated keys left
    to the database); returns a note per table that refused them."""
    _checks.backend(backend)
    exclude = _checks.names(exclude, "exclude")
    rows = validate.count(rows, "rows", low=0, what="a number of rows")
    n = validate.count(start, "start", low=-(2**62), high=2**62, what="a first value",
                       accepted="an integer")
    notes = []
    for table in backend.dialect.tables(conn):
        if table in exclude:
            continue
        columns = _columns(conn, backend, table)
        if not columns:
            continue
        names = ", ".join(quote(c) for c, _ in columns)
        marks = ", ".join([backend.dialect.placeholder] * len(columns))
        try:
            for _ in range(rows):
                execute(conn, f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})",
                        [_value(t, n) for _, t in columns])
                n += 1
        except Exception as exc:
            notes.append(f"table {table} took no seeded row ({exc})")
    return notes


def _columns(conn: Any, backend: Backend, table: str) -> list[tuple[str, str]]:
    """(name, type) of the columns to fill: all but generated integer keys."""
    if backend.dialect.name == "sqlite":
        info = execute(conn, f"PRAGMA table_info({quote(table)})")
        int_keys = [r for r in info if r[5]]
        skip = {r[1] for r in int_keys if len(int_keys) == 1 and str(r[2]).upper() == "INTEGER"}
        return [(r[1], str(r[2])) for r in info if r[1] not in skip]
    info = execute(conn, "SELECT column_name, data_type, column_default, is_identity FROM "
                         "information_schema.columns WHERE table_schema = current_schema() "
                         f"AND table_name = {backend.dialect.placeholder} "
                         "ORDER BY ordinal_position", [table])
    return [(c, t) for c, t, default, ident in info
            if not (ident == "YES" or str(default or "").startswith("nextval("))]


# -- hooks -----------------------------------------------------------------------------------
class _Recorder:
    def __init__(self) -> None:
        self.points: list[Point] = []

    def __call__(self, point: Point) -> None:
        self.points.append(point)


class _Crasher:
    """Crash at the ``at``-th call (from 0): raise ``CrashInjected`` or SIGKILL itself.

    Once crashed it stays crashed: every later statement raises too, so clean-up code
    (alembic's batch mode drops its temp table in a bare ``except:``) runs no SQL, as
    after a real crash.
    """

    def __init__(self, at: int, *, kill: bool = False) -> None:
        self.at = at
        self.kill = kill
        self.calls = 0
        self.point: Point | None = None

    def __call__(self, point: Point) -> None:
        index = self.calls
        self.calls += 1
        if index == self.at:
            self.point = point
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
        if self.point is not None:
            raise CrashInjected(f"crash injected before {self.point.describe()}")


# -- the explorer --------------------------------------------------------------------------
def _schema_changes(want: Snapshot, got: Snapshot) -> list[str]:
    """``table users_new is extra``, ``index i on t is missing``, or the changed lines."""
    def by_object(schema: frozenset[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for line in schema:
            out.setdefault(line.split(":", 1)[0], set()).add(line)
        return out

    mine, theirs = by_object(want.schema), by_object(got.schema)
    changes = []
    for obj in sorted(set(mine) | set(theirs)):
        if obj not in theirs:
            changes.append(f"{obj} is missing")
        elif obj not in mine:
            changes.append(f"{obj} is extra")
        else:
            changes += [f"- {line}" for line in sorted(mine[obj] - theirs[obj])]
            changes += [f"+ {line}" for line in sorted(theirs[obj] - mine[obj])]
    return changes


def _memory_tmp() -> str | None:
    """``/dev/shm`` when writable: a killed process loses nothing the OS has buffered, so
    the explorer skips the cost of fsync (it simulates process crashes, not power loss)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


@dataclass
class _Baseline:
    db: str
    snapshot: Snapshot


@dataclass
class _Explored:
    step: Step
    before: _Baseline
    after: Snapshot
    points: list[Point] = field(default_factory=list)


class CrashExplorer:
    """Explores the crash points of a migration set, one migration at a time.

    ``migrations``: a migrations directory, a ``MigrationSet`` or a ``Source`` (e.g.
    ``AlembicSource``). ``backend``: where databases live (default: SQLite files in
    ``workdir``, or a temp dir in ``/dev/shm`` when there is one). ``seed(conn, version)``
    writes rows after the database reaches each version (``version`` None: before the
    first migration); the default inserts generated rows into every table, ``seed=False``
    none. ``kill_sample``: how many crash points per migration are also run as a
    SIGKILLed child process (drawn with ``kill_seed``). ``round_trip``: also check
    up -> down -> up. Use as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        migrations: str | Path | MigrationSet | Source,
        *,
        backend: Backend | None = None,
        workdir: str | Path | None = None,
        seed: Seed | bool = True,
        kill_sample: int = 2,
        kill_seed: int = 0,
        round_trip: bool = True,
        clock: Clock | None = None,
        name: str = "crash-explorer",
    ) -> None:
        kill_sample = validate.count(kill_sample, "kill_sample", low=0,
                                     what="a number of crash points")
        kill_seed = validate.count(kill_seed, "kill_seed", low=-(2**63), high=2**63,
                                   what="a seed", accepted="an integer")
        validate.check(isinstance(seed, bool) or callable(seed), "seed", seed,
                       what="a seeding choice", accepted="True (generated rows), False "
                       "(none) or a function seed(conn, version)", kind=TypeError)
        validate.check(isinstance(round_trip, bool), "round_trip", round_trip,
                       what="a switch", accepted="True or False", kind=TypeError)
        self.clock: Clock = validate.clock(clock)
        self.name = validate.text(name, "name")
        workdir = _checks.path_or_none(workdir, "workdir")
        if backend is not None:
            _checks.backend(backend)
        self.source: Source = (migrations if _checks.is_source(migrations)
                               else SqlSource(_checks.migration_set(migrations)))
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if backend is None:
            if workdir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="resilience-crash-",
                                                        dir=_memory_tmp())
                workdir = self._tmp.name
            backend = SQLiteBackend(workdir)
        self.backend = backend
        self.seed = seed
        self.kill_sample = kill_sample
        self.kill_seed = kill_seed
        self.round_trip = round_trip
        self.steps = self.source.steps()
        self._explored: list[_Explored] = []
        self._bases: list[_Baseline] = []
        self._made: set[str] = set()
        self._seeded = 0
        self.notes: list[str] = []

    def __enter__(self) -> CrashExplorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop every database the explorer made."""
        for db in sorted(self._made):
            self.backend.drop(db)
        self._made.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- databases -----------------------------------------------------------------------
    def _db(self, db: str) -> str:
        self._made.add(db)
        return db

    @contextmanager
    def _open(self, db: str) -> Iterator[Any]:
        conn = self.backend.connect(db)
        try:
            yield conn
        finally:
            conn.close()

    def _snapshot(self, db: str) -> tuple[str | None, Snapshot]:
        with self._open(db) as conn:
            return (self.source.current(conn),
                    self.backend.dialect.snapshot(conn, self.source.bookkeeping))

    def _seed(self, db: str, version: str | None) -> None:
        if self.seed is False:
            return
        with self._open(db) as conn:
            if callable(self.seed):
                self.seed(conn, version)
            else:
                self.notes += auto_seed(conn, self.backend, exclude=self.source.bookkeeping,
                                        start=self._seeded * 100 + 1)
        self._seeded += 1

    def _build(self, upto: int) -> None:
        """Build the seeded baselines and reference states up to step ``upto``."""
        if not self._bases:
            base = self._db("base_0")
            self.backend.create(base)
            self._seed(base, None)
            self._bases.append(_Baseline(base, self._snapshot(base)[1]))
        while len(self._explored) <= upto:
            i = len(self._explored)
            step, before = self.steps[i], self._bases[i]
            db = self._db(f"base_{i + 1}")
            self.backend.copy(before.db, db)
            recorder = _Recorder()
            self.source.upgrade(self.backend, db, step.version, recorder)
            _, after = self._snapshot(db)
            self._explored.append(_Explored(step, before, after, recorder.points))
            self._seed(db, step.version)
            self._bases.append(_Baseline(db, self._snapshot(db)[1]))

    def _index(self, version: str) -> int:
        for i, step in enumerate(self.steps):
            if step.version == version:
                return i
        raise ValueError(f"version={version!r} is not a migration of this set; known: "
                         f"{[s.version for s in self.steps]}.")

    # -- checks --------------------------------------------------------------------------
    def _judge(self, db: str, ex: _Explored) -> tuple[str, list[str]]:
        """``("old"|"new"|"broken", problems)`` for a database after a crash."""
        try:
            version, snap = self._snapshot(db)
        except Exception as exc:
            return "broken", [f"the database cannot be read: {exc!r}"]
        step = ex.step
        if version == step.previous:
            outcome, want, which = "old", ex.before.snapshot, step.previous or "base"
        elif version == step.version:
            outcome, want, which = "new", ex.after, step.version
        else:
            return "broken", [f"at version {version or 'base'}, neither {step.previous or 'base'}"
                              f" nor {step.version}"]
        return outcome, self._compare(snap, want, f"version {which}")

    @staticmethod
    def _compare(got: Snapshot, want: Snapshot, what: str) -> list[str]:
        if got == want:
            return []
        problems = []
        diff = _schema_changes(want, got)
        if diff:
            problems.append(f"schema differs from {what}'s: " + ", ".join(diff[:6])
                            + (f" (+{len(diff) - 6} more)" if len(diff) > 6 else ""))
        lost = want.lost_rows(got)
        if lost:
            problems.append("rows lost: " + ", ".join(f"{t}: {n}" for t, n in sorted(lost.items())))
        extra = got.lost_rows(want)
        if extra:
            problems.append(f"rows that {what} does not hold: "
                            + ", ".join(f"{t}: {n}" for t, n in sorted(extra.items())))
        return problems

    def _resume(self, db: str, ex: _Explored) -> list[str]:
        """Upgrading again after the crash must reach the new version's state."""
        try:
            self.source.upgrade(self.backend, db, ex.step.version)
        except Exception as exc:
            return [f"upgrading again after the crash fails: {exc}"]
        version, snap = self._snapshot(db)
        if version != ex.step.version:
            return [f"upgrading again after the crash ends at {version or 'base'}"]
        return [f"after upgrading again, {p}" for p in
                self._compare(snap, ex.after, f"version {ex.step.version}")]

    def _crash_once(self, ex: _Explored, k: int, kill: bool) -> CrashFinding | None:
        db = self._db(f"crash_{self._index(ex.step.version) + 1}")
        self.backend.copy(ex.before.db, db)
        point = ex.points[k]
        problems: list[str] = []
        if kill:
            problems += self._kill(db, ex.step, k)
        else:
            crasher = _Crasher(k)
            try:
                self.source.upgrade(self.backend, db, ex.step.version, crasher)
                problems.append("the upgrade finished without reaching this point again "
                                "(the statements differ from run to run)")
            except (CrashInjected, Exception) as exc:
                if crasher.point is None:  # failed before the crash point
                    problems.append(f"the upgrade failed before this point: {exc!r}")
        outcome, judged = self._judge(db, ex)
        problems += judged
        if not problems:
            problems += self._resume(db, ex)
        self.backend.drop(db)
        emit(MIGRATION_CRASH_POINT, self.name, self.clock, version=ex.step.version,
             migration=ex.step.label, point=k, point_kind=point.kind, statement=point.describe(),
             mode="sigkill" if kill else "exception", outcome=outcome, problems=list(problems))
        if not problems:
            return None
        return CrashFinding(ex.step.version, ex.step.label, "sigkill" if kill else "exception",
                            tuple(problems), point, k)

    def _kill(self, db: str, step: Step, k: int) -> list[str]:
        source = self.source.spec()
        if source is None:
            return []
        spec = {"source": source, "backend": self.backend.spec(), "db": db,
                "to": step.version, "kill_at": k}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest_resilience.migrations._child", json.dumps(spec)],
            capture_output=True, text=True, timeout=_CHILD_TIMEOUT, check=False)
        if proc.returncode == -signal.SIGKILL:
            return []
        if proc.returncode == CHILD_MISSED:
            return ["the child process finished without reaching this point"]
        return [f"the child process exited with status {proc.returncode} instead of being "
                f"killed: {proc.stderr.strip()[-500:]}"]

    def _round_trip(self, ex: _Explored) -> CrashFinding | None:
        i = self._index(ex.step.version)
        db = self._db(f"trip_{i + 1}")
        self.backend.copy(ex.before.db, db)
        problems: list[str] = []
        stage = "up"
        try:
            self.source.upgrade(self.backend, db, ex.step.version)
            _, up = self._snapshot(db)
            stage = "down"
            self.source.downgrade(self.backend, db, ex.step.previous)
            version, down = self._snapshot(db)
            previous = ex.step.previous or "base"
            if version != ex.step.previous:
                problems.append(f"down ends at {version or 'base'}, not {previous}")
            problems += [f"after down, {p}" for p in
                         self._compare(down, ex.before.snapshot, f"version {previous}")]
            stage = "up again"
            self.source.upgrade(self.backend, db, ex.step.version)
            _, again = self._snapshot(db)
            problems += [f"after up again, {p}" for p in
                         self._compare(again, up, "the first up")]
        except Exception as exc:
            problems.append(f"{stage} failed: {exc}")
        self.backend.drop(db)
        emit(MIGRATION_ROUND_TRIP, self.name, self.clock, version=ex.step.version,
             migration=ex.step.label, outcome="broken" if problems else "ok",
             problems=list(problems))
        return (CrashFinding(ex.step.version, ex.step.label, "round-trip", tuple(problems))
                if problems else None)

    # -- public ----------------------------------------------------------------------------
    def explore(self, version: str) -> MigrationReport:
        """Crash migration ``version`` at every point (and round-trip it)."""
        i = self._index(version)
        self._build(i)
        ex = self._explored[i]
        kills: set[int] = set()
        if self.kill_sample and self.source.spec() is not None:
            rng = random.Random(f"{self.kill_seed}:{version}")
            kills = set(rng.sample(range(len(ex.points)), min(self.kill_sample,
                                                             len(ex.points))))
        findings = []
        killed = 0
        for k in range(len(ex.points)):
            for kill in (False, True) if k in kills else (False,):
                killed += kill
                finding = self._crash_once(ex, k, kill=kill)
                if finding is not None:
                    findings.append(finding)
        if self.round_trip:
            trip = self._round_trip(ex)
            if trip is not None:
                findings.append(trip)
        notes = [] if self.source.spec() is not None or not self.kill_sample else [
            "no SIGKILL run: the migrations were not loaded from a directory"]
        return MigrationReport(version, ex.step.label, tuple(ex.points), len(ex.points),
                               killed, tuple(findings), ex.step.transactional,
                               tuple(notes))

    def run(self, versions: Sequence[str] | None = None) -> CrashReport:
        """Explore every migration (or those in ``versions``), in apply order."""
        wanted = [s.version for s in self.steps] if versions is None else list(versions)
        return CrashReport(tuple(self.explore(v) for v in wanted))


def explore_crashes(migrations: str | Path | MigrationSet | Source, **settings: Any
                    ) -> CrashReport:
    """Explore every migration of a set; ``settings`` as for ``CrashExplorer``."""
    with CrashExplorer(migrations, **settings) as explorer:
        return explorer.run()
