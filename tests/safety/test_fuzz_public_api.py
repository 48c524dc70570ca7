"""Fuzz every public constructor and every ``from_dict`` / ``from_json`` / ``parse``.

One argument at a time gets a hostile value (huge ints, infinities, NaN, bools, strings,
containers, types, callables, deep nesting, an object whose ``repr`` raises); the only
errors allowed are ``ValueError``, ``TypeError`` and ``ResilienceError`` subclasses, and
the message must name the argument (for a parser: the argument or the field of the
document that is wrong). A constructor that returns a context manager is entered and
left, and a strategy is drawn from, so a value accepted at construction cannot fail
later. Parsers get random JSON-like data and mutated valid documents. Regression for
issue 14, defect 11 (27 kinds of undocumented errors: OverflowError, KeyError,
AttributeError, RecursionError, AssertionError ...).

The tables are checked against the public modules (every module of both packages
without an underscore in its path): a public callable is fuzzed here (by its public
spelling), takes no arguments, or is listed in ``EXEMPT`` with the reason it takes no
settings.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import importlib
import inspect
import json
import os
import random
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_resilience import ResilienceError, VirtualClock

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: Examples per target (``SLOW_EXAMPLES`` for those that start a process per call); the
#: tables hold enough targets that a run draws well over 2,000.
EXAMPLES = 20
SLOW_EXAMPLES = 8
#: The same examples every run: a gate, not a lottery. To hunt for defects a fresh seed
#: can find (KNOWN_DEFECTS lists any found and not fixed yet), set this to False and run
#: the module with ``--hypothesis-seed=<n>`` for a few values of n (derandomize ignores
#: the seed).
DERANDOMIZE = True
ALLOWED = (ValueError, TypeError, ResilienceError)


class _Opaque:
    """An object of no useful type, with a repr that raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("<opaque: repr raises>")  # how Hypothesis prints a failing example


class _Deep(list[Any]):
    """A list nested 5,000 deep (past the recursion limit); Hypothesis prints it short."""

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("<list nested 5000 deep>")


def _nested(depth: int) -> _Deep:
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return _Deep([value])


_SPECIALS: list[Any] = [
    None, True, False, 0, 1, -1, 2**31, 2**63, 2**64 + 1, 10**400, -(10**400), 2**1024,
    0.0, -0.0, 1e-320, 1e308, float("inf"), float("-inf"), float("nan"), "", "30", "1e999",
    "nan", " ", "x" * 300, b"", b"\x00", 1j, Decimal("1.5"), Decimal("NaN"), Fraction(1, 3),
    [], [1], {}, {"a": 1}, (), (1, 2), (ValueError, 42), ValueError, Exception,
    BaseException, int, object, object(), _Opaque(), print, lambda: None, Path("/"),
    _nested(5000), set(), frozenset({1}),
]


def _is_path(value: Any) -> bool:
    return isinstance(value, str | bytes | os.PathLike)


def hostile() -> st.SearchStrategy[Any]:
    """Values no setting should take without a clear refusal."""
    return st.one_of(
        st.sampled_from(_SPECIALS),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        st.tuples(st.integers(), st.text(max_size=2)),
    )


def not_a_path() -> st.SearchStrategy[Any]:
    """Hostile values for a path argument: every string names some place (and fuzzing
    one would create files where the test runs), so only the wrong types."""
    return hostile().filter(lambda v: not _is_path(v))


def json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON-like data."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6),
                        st.floats(allow_nan=True, allow_infinity=True),
                        st.sampled_from([10**400, 2**64, -(2**63) - 1]))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
        max_leaves=20)


def _check_error(exc: BaseException, names: tuple[str, ...]) -> None:
    assert isinstance(exc, ALLOWED), f"undocumented {type(exc).__name__}: {exc}"
    message = str(exc)
    assert any(name in message for name in names), f"message does not name {names}: {exc}"


# -- constructors ------------------------------------------------------------------------


@dataclass
class Target:
    """One public constructor, by its public spelling: how to call it, with which valid
    arguments, which arguments are paths (fuzzed with non-path types only) and which are
    not fuzzed (with the reason)."""

    label: str
    build: Callable[..., Any]
    base: dict[str, Any] = field(default_factory=dict)
    skip: Mapping[str, str] = field(default_factory=dict)
    paths: tuple[str, ...] = ()
    enter: bool = False  # a context manager: its checks run on entry, and it is left
    draw: bool = False  # a Hypothesis strategy: drawn from once
    close: Callable[[Any], Any] | None = None
    slow: bool = False  # starts a process per call: fuzzed with SLOW_EXAMPLES

    @property
    def examples(self) -> int:
        return SLOW_EXAMPLES if self.slow else EXAMPLES


_CLOCK_ARG = "the clock a clock fault moves: any Clock, checked by tests/injectors"


def _close(obj: Any) -> None:
    obj.close()


def _stop(obj: Any) -> None:
    obj.stop()


def _undo(obj: Any) -> None:
    obj.undo()


def _call(obj: Any) -> None:
    obj()


class _Cache:
    """A small cache to watch."""

    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        return self.data.get(key)

    def put(self, key: Any, value: Any) -> None:
        self.data[key] = value


class _Service:
    """An object with a method to watch."""

    def fetch(self) -> int:
        return 1


class _Collection:
    """The write methods ``fail_during`` patches."""

    def add(self, ids: Any = None, **kwargs: Any) -> None:
        return None

    update = upsert = delete = add


def _tiny_migrations(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "0001_create_t.up.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY);\n")
    (root / "0001_create_t.down.sql").write_text("DROP TABLE t;\n")
    return root


def _afailpoint(name: Any, default: Any = None) -> Any:
    from faults import afailpoint

    return asyncio.run(afailpoint(name, default))


def _synchronous(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a coroutine function) run to completion, with ``fn``'s signature (the fuzz
    reads the arguments to vary from it)."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return run


def _outside_given(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` called in a thread of its own, joined, with ``fn``'s signature: a function
    that runs Hypothesis itself (``run_chaos``) fails Hypothesis' nested-@given health
    check when called inside the fuzz's @given, whatever its arguments; the check reads a
    thread-local."""

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(fn, *args, **kwargs).result()

    return run


def _empty_report() -> dict[str, Any]:
    from pytest_resilience.report import build_report

    return build_report(seed=1, seed_source="fixed", environment={}, records={},
                        operations=[], lost_workers=[], benchmarks=[],
                        created="2024-01-01T00:00:00Z")


class _Ref:
    """A shared argument of the table, made once per module by ``_Env``."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Refs:
    def __getattr__(self, name: str) -> _Ref:
        return _Ref(name)


E = _Refs()


class _Env:
    """The live objects some constructors need, made in a temporary directory."""

    def __init__(self, tmp: Path) -> None:
        import faults
        import pytest_resilience as pr
        from faults import http, network
        from pytest_resilience import migrations

        self.tmp = tmp
        self.clock = VirtualClock()
        self.history = pr.History(clock=self.clock)
        self.store = tmp / "store"
        self.store.mkdir()
        self.disk = tmp / "disk"
        self.disk.mkdir()
        self.migrations = _tiny_migrations(tmp / "migrations")
        self.migration_list = list(migrations.load_migrations(self.migrations))
        self.script = tmp / "workload.py"
        self.script.write_text("from faults.disk import ack\nack(1)\n")
        self.dlq = pr.DeadLetterQueue(path=tmp / "jobs-dlq.sqlite3", clock=self.clock)
        self.explorer = migrations.CrashExplorer(self.migrations, workdir=tmp / "explorer",
                                                 clock=self.clock)
        self.proxy = network.FaultProxy(upstream=("127.0.0.1", 9), clock=self.clock)
        self.http_proxy = http.HttpFaultProxy(upstream=("127.0.0.1", 9), clock=self.clock)
        self.plan = faults.FaultPlan([faults.Fault("fuzz.plan", faults.Action.raise_())],
                                     seed=1)
        self.report = _empty_report()
        self.connection = sqlite3.connect(":memory:")
        self.backend = migrations.SQLiteBackend(tmp / "seed-backend")
        self.breaker = pr.CircuitBreaker(clock=self.clock)

    def resolve(self, base: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self._value(v) for k, v in base.items()}

    def _value(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._value(v) for v in value]
        if isinstance(value, _Ref):
            if value.name.startswith("tmp_"):
                return self.tmp / value.name[4:]
            return getattr(self, value.name)
        return value

    def close(self) -> None:
        self.dlq.close()
        self.explorer.close()
        self.connection.close()


def _body(run: Any) -> None:
    return None


def _never(state: Any) -> None:
    return None


def _noop() -> None:
    return None


def _targets() -> list[Target]:
    import faults
    import pytest_resilience as pr
    from faults import chroma as fchroma
    from faults import clock as fclock
    from faults import cuda, disk, memory, network
    from faults import families as ffam
    from faults import http as fhttp
    from faults import strategies as fst
    from faults import subprocess as fsub
    from pytest_resilience import (
        chaos,
        checks,
        chroma,
        kinds,
        migrations,
        observability,
        observe,
        report,
        sla,
    )
    from pytest_resilience import memory as pmem

    clock = E.clock
    history = E.history
    store = E.store
    disk_root = E.disk
    migration_dir = E.migrations
    body, never, noop = _body, _never, _noop
    cmd = {"command": "fuzz-tool"}
    return [
        # -- pytest_resilience ----------------------------------------------------------
        Target("pytest_resilience.Backoff.exponential", pr.Backoff.exponential),
        Target("pytest_resilience.Backoff.linear", pr.Backoff.linear),
        Target("pytest_resilience.Backoff.constant", pr.Backoff.constant),
        Target("pytest_resilience.Retry", pr.Retry, {"clock": clock}),
        Target("pytest_resilience.retry", pr.retry, {"clock": clock}),
        Target("pytest_resilience.RetryBudget", pr.RetryBudget, {"clock": clock}),
        Target("pytest_resilience.CircuitBreaker", pr.CircuitBreaker, {"clock": clock}),
        Target("pytest_resilience.TokenBucket", pr.TokenBucket,
               {"rate": 1.0, "capacity": 2.0, "clock": clock}),
        Target("pytest_resilience.RateLimiter", pr.RateLimiter, {"clock": clock}),
        Target("pytest_resilience.TimeoutLock", pr.TimeoutLock, {"clock": clock}),
        Target("pytest_resilience.FairSemaphore", pr.FairSemaphore, {"clock": clock}),
        Target("pytest_resilience.AsyncRWLock", pr.AsyncRWLock, {"clock": clock}),
        Target("pytest_resilience.ResourcePool", pr.ResourcePool,
               {"factory": object, "size": 2, "clock": clock}),
        Target("pytest_resilience.HealthRegistry", pr.HealthRegistry, {"clock": clock}),
        Target("pytest_resilience.DeadLetterQueue", pr.DeadLetterQueue,
               {"path": E.tmp_dlq_sqlite3, "clock": clock}, paths=("path",),
               close=_close),
        Target("pytest_resilience.JobQueue", pr.JobQueue,
               {"dead_letter": E.dlq, "clock": clock}),
        Target("pytest_resilience.MemoryStorage", pr.MemoryStorage),
        # Building a RedisStorage never connects (the first operation does), so every
        # argument, the URL included, is fuzzed without a server.
        Target("pytest_resilience.RedisStorage", pr.RedisStorage,
               {"url": "redis://127.0.0.1:9/0"}, close=_close),
        Target("pytest_resilience.VirtualClock", pr.VirtualClock),
        Target("pytest_resilience.History", pr.History),
        Target("pytest_resilience.recording", pr.recording, enter=True),
        Target("pytest_resilience.add_listener", pr.add_listener, {"fn": print},
               close=_call),
        # -- pytest_resilience.memory ---------------------------------------------------
        Target("pytest_resilience.memory.MemoryPressureMonitor", pmem.MemoryPressureMonitor,
               {"clock": clock, "reader": lambda: None}, paths=("cgroup_root",)),
        Target("pytest_resilience.memory.GPUMonitor", pmem.GPUMonitor,
               {"clock": clock, "reader": list}),
        Target("pytest_resilience.memory.ModelCache", pmem.ModelCache, {"clock": clock}),
        # -- pytest_resilience.chroma ---------------------------------------------------
        Target("pytest_resilience.chroma.BackupManager", chroma.BackupManager,
               {"store": store, "directory": E.tmp_backups, "clock": clock},
               paths=("store", "directory", "key_file"),
               skip={"encrypt_to": "a key: any bytes or text is one (tests/chroma)",
                     "key_env": "the name of an environment variable: any string is one"}),
        Target("pytest_resilience.chroma.StoreLock", chroma.StoreLock,
               {"store": store, "clock": clock}, paths=("store",)),
        Target("pytest_resilience.chroma.RecordRules", chroma.RecordRules),
        Target("pytest_resilience.chroma.ValidatingCollection", chroma.ValidatingCollection,
               {"collection": _Collection()}),
        # -- pytest_resilience.checks (a checker's settings are refused before it reads
        # the history) ---------------------------------------------------------------
        Target("pytest_resilience.checks.check_amplification", checks.check_amplification,
               {"history": history}),
        Target("pytest_resilience.checks.check_breaker", checks.check_breaker,
               {"history": history}),
        Target("pytest_resilience.checks.check_eviction", checks.check_eviction,
               {"history": history}),
        Target("pytest_resilience.checks.check_latency", checks.check_latency,
               {"history": history, "budgets": ["p95<200ms"]}),
        Target("pytest_resilience.checks.check_retry", checks.check_retry,
               {"history": history}),
        Target("pytest_resilience.checks.check_rollback", checks.check_rollback,
               {"before": {}, "after": {}}),
        Target("pytest_resilience.checks.check_ttl", checks.check_ttl,
               {"history": history, "ttl": 1.0}),
        Target("pytest_resilience.checks.PybreakerRecorder", checks.PybreakerRecorder),
        Target("pytest_resilience.checks.TenacityRecorder", checks.TenacityRecorder),
        # -- pytest_resilience.kinds ----------------------------------------------------
        Target("pytest_resilience.kinds.Kind", kinds.Kind,
               {"name": "fuzz.kind", "record": dict, "source": "fuzz", "doc": "fuzzed"}),
        Target("pytest_resilience.kinds.declared", kinds.declared, {"name": "retry.attempt"}),
        Target("pytest_resilience.kinds.markdown_table", kinds.markdown_table),
        # -- pytest_resilience.migrations -----------------------------------------------
        Target("pytest_resilience.migrations.AlembicSource", migrations.AlembicSource,
               {"config": Path(__file__).parents[2] / "example_suites" / "alembic_app"
                / "alembic.ini"}, paths=("config",), slow=True),
        Target("pytest_resilience.migrations.CrashExplorer", migrations.CrashExplorer,
               {"migrations": migration_dir, "workdir": E.tmp_explorer, "clock": clock},
               paths=("migrations", "workdir"), close=_close),
        Target("pytest_resilience.migrations.Migrator", migrations.Migrator,
               {"connection": E.connection, "migrations": migration_dir},
               paths=("migrations",),
               skip={"connection": "a live DB-API connection: any object with cursor() "
                                   "(its dialect is what is checked: dialect=)"}),
        Target("pytest_resilience.migrations.MigrationSet", migrations.MigrationSet,
               {"migrations": E.migration_list},
               paths=("source",)),
        Target("pytest_resilience.migrations.MigrationCase", migrations.MigrationCase,
               {"explorer": E.explorer, "version": "0001"}),
        Target("pytest_resilience.migrations.PostgresBackend", migrations.PostgresBackend,
               {"dsn": "host=127.0.0.1 port=9 dbname=postgres"}),
        Target("pytest_resilience.migrations.SQLiteBackend", migrations.SQLiteBackend,
               {"directory": E.tmp_sqlite_backend}, paths=("directory",)),
        Target("pytest_resilience.migrations.SqlSource", migrations.SqlSource,
               {"migrations": migration_dir}, paths=("migrations",)),
        Target("pytest_resilience.migrations.auto_seed", migrations.auto_seed,
               {"conn": E.connection, "backend": E.backend},
               skip={"conn": "a live DB-API connection (see Migrator)"}),
        Target("pytest_resilience.migrations.load_migrations", migrations.load_migrations,
               {"directory": migration_dir}, paths=("directory",)),
        Target("pytest_resilience.migrations.open_source", migrations.open_source,
               {"path": migration_dir}, paths=("path",)),
        Target("pytest_resilience.migrations.split_statements", migrations.split_statements,
               {"sql": "SELECT 1; SELECT 2;"}),
        Target("pytest_resilience.migrations.non_transactional_reason",
               migrations.non_transactional_reason,
               {"statement": "CREATE INDEX i ON t(id)", "dialect": "sqlite"}),
        # -- pytest_resilience.observability --------------------------------------------
        Target("pytest_resilience.observability.Redactor", observability.Redactor),
        Target("pytest_resilience.observability.PrometheusMetrics",
               observability.PrometheusMetrics,
               skip={"registry": "a prometheus_client CollectorRegistry, passed through"}),
        Target("pytest_resilience.observability.log_events", observability.log_events,
               close=_close),
        Target("pytest_resilience.observability.EventLogging", observability.EventLogging,
               close=_close),
        Target("pytest_resilience.observability.log_to_files", observability.log_to_files,
               {"directory": E.tmp_logs}, paths=("directory",), close=_close),
        Target("pytest_resilience.observability.trace_operation",
               observability.trace_operation, {"name": "op", "clock": clock}),
        Target("pytest_resilience.observability.correlation", observability.correlation,
               enter=True),
        Target("pytest_resilience.observability.bind", observability.bind, {"fn": print}),
        Target("pytest_resilience.observability.HumanFormatter",
               observability.HumanFormatter),
        Target("pytest_resilience.observability.JsonFormatter", observability.JsonFormatter),
        # -- pytest_resilience.observe (entered: a watch patches on entry) --------------
        Target("pytest_resilience.observe.watch_breaker", observe.watch_breaker,
               {"breaker": E.breaker, "clock": clock}, enter=True),
        Target("pytest_resilience.observe.BreakerWatch", observe.BreakerWatch,
               {"breaker": E.breaker, "clock": clock}, enter=True),
        Target("pytest_resilience.observe.watch_cache", observe.watch_cache,
               {"cache": _Cache(), "clock": clock}, enter=True),
        Target("pytest_resilience.observe.CacheWatch", observe.CacheWatch,
               {"cache": _Cache(), "clock": clock}, enter=True),
        Target("pytest_resilience.observe.watch_calls", observe.watch_calls,
               {"target": _Service(), "names": "fetch", "clock": clock}, enter=True),
        Target("pytest_resilience.observe.CallWatch", observe.CallWatch,
               {"target": _Service(), "names": "fetch", "clock": clock}, enter=True),
        Target("pytest_resilience.observe.watch_sleeps", observe.watch_sleeps,
               {"clock": clock}, enter=True),
        Target("pytest_resilience.observe.SleepWatch", observe.SleepWatch,
               {"clock": clock}, enter=True),
        # -- pytest_resilience.report / sla / chaos -------------------------------------
        Target("pytest_resilience.report.compare_reports", report.compare_reports,
               {"baselines": [E.report], "currents": [E.report],
                "rules": [report.Rule.parse("p99:+10%")]}),
        Target("pytest_resilience.sla.SLARecorder", sla.SLARecorder, {"clock": clock}),
        Target("pytest_resilience.sla.min_samples", sla.min_samples, {"q": 0.99}),
        Target("pytest_resilience.chaos.run_chaos", _outside_given(chaos.run_chaos),
               {"body": body, "max_examples": 1, "seed": 1, "families": ()},
               skip={"database": "a Hypothesis ExampleDatabase, passed through",
                     **dict.fromkeys(("must_fire", "sometimes"),
                                     "names the run must reach: any list of names is valid, "
                                     "and one never reached ends the run in ChaosVacuous "
                                     "(its verdict); types are checked in tests/chaos")},
               slow=True),
        Target("pytest_resilience.chaos.replay", chaos.replay,
               {"body": body, "plan": E.plan, "families": ()}),
        # -- faults ---------------------------------------------------------------------
        Target("faults.Trigger.nth", faults.Trigger.nth, {"n": 1}),
        Target("faults.Trigger.first", faults.Trigger.first, {"n": 1}),
        Target("faults.Trigger.rate", faults.Trigger.rate, {"p": 0.5}),
        Target("faults.Trigger.after", faults.Trigger.after, {"seconds": 1.0}),
        Target("faults.Action.raise_", faults.Action.raise_),
        Target("faults.Action.delay", faults.Action.delay, {"seconds": 1.0}),
        Target("faults.Action.call", faults.Action.call, {"fn": print}),
        Target("faults.Fault", faults.Fault,
               {"failpoint": "db.write", "action": faults.Action.raise_()}),
        Target("faults.FaultPlan", faults.FaultPlan),
        Target("faults.Scheduled", faults.Scheduled,
               {"family": "clock", "kind": "skew", "at": 1.0, "params": {"seconds": 2}}),
        Target("faults.FaultScope", faults.FaultScope, {"clock": clock}),
        Target("faults.activate", faults.activate, {"target": [], "clock": clock}),
        Target("faults.inject", faults.inject, {"name": "fuzz.point", "clock": clock}),
        Target("faults.instrument", faults.instrument, {"name": "fuzz.point", "fn": noop}),
        Target("faults.failpoint", faults.failpoint, {"name": "fuzz.unarmed"}),
        Target("faults.afailpoint", _afailpoint, {"name": "fuzz.unarmed"}),
        Target("faults.allow_plan_modules", faults.allow_plan_modules,
               {"names": "json"}, close=_call),
        # -- faults.memory / cuda / clock -----------------------------------------------
        Target("faults.memory.oom_at", memory.oom_at, {"target": "fuzz.oom", "clock": clock},
               enter=True),
        Target("faults.memory.memory_pressure", memory.memory_pressure,
               {"percent": 50.0, "clock": clock}, enter=True),
        Target("faults.cuda.fake_gpu", cuda.fake_gpu, {"clock": clock}, enter=True),
        Target("faults.clock.skew", fclock.skew, {"seconds": 1.0, "clock": clock},
               skip={"clock": _CLOCK_ARG, "exclude": "module names: any strings"},
               enter=True),
        Target("faults.clock.drift", fclock.drift, {"rate": 1.5, "clock": clock},
               skip={"clock": _CLOCK_ARG, "exclude": "module names: any strings"},
               enter=True),
        Target("faults.clock.jump", fclock.jump, {"to": 1.0e9, "clock": clock},
               skip={"clock": _CLOCK_ARG}, enter=True),
        # -- faults.chroma --------------------------------------------------------------
        Target("faults.chroma.fail_during", fchroma.fail_during,
               {"collection": _Collection(), "op": "add", "clock": clock},
               skip={"collection": "a live collection: any object with the write method"},
               enter=True),
        # -- faults.network -------------------------------------------------------------
        Target("faults.network.latency", network.latency, {"ms": 10.0}),
        Target("faults.network.timeout", network.timeout, {"ms": 10.0}),
        Target("faults.network.bandwidth", network.bandwidth, {"kb_per_s": 10.0}),
        Target("faults.network.slicer", network.slicer, {"avg_size": 10}),
        Target("faults.network.limit_data", network.limit_data, {"nbytes": 10}),
        Target("faults.network.reset_peer", network.reset_peer),
        Target("faults.network.slow_close", network.slow_close, {"ms": 10.0}),
        Target("faults.network.FaultProxy", network.FaultProxy,
               {"upstream": ("127.0.0.1", 9), "clock": clock}),
        # -- faults.http ----------------------------------------------------------------
        Target("faults.http.abort", fhttp.abort),
        Target("faults.http.delay", fhttp.delay, {"ms": 10.0}),
        Target("faults.http.replace_body", fhttp.replace_body, {"body": b"x"}),
        Target("faults.http.truncate_body", fhttp.truncate_body, {"nbytes": 1}),
        Target("faults.http.drop_header", fhttp.drop_header, {"name": "X-Model"}),
        Target("faults.http.HttpFaultProxy", fhttp.HttpFaultProxy,
               {"upstream": ("127.0.0.1", 9), "clock": clock}),
        Target("faults.http.Selector.build", fhttp.Selector.build,  # add_fault's keywords
               {"path": "*", "methods": None, "rate": 1.0, "times": None}),
        Target("faults.network.connection_refused", network.connection_refused,
               {"host": "127.0.0.1", "port": 9, "clock": clock}, enter=True),
        Target("faults.network.dns_failure", network.dns_failure,
               {"name": "fuzz.invalid", "clock": clock}, enter=True),
        Target("faults.network.slow_connect", network.slow_connect,
               {"ms": 1.0, "host": "127.0.0.1", "port": 9, "clock": clock}, enter=True),
        # -- faults.disk ----------------------------------------------------------------
        Target("faults.disk.io_error", disk.io_error, {"root": disk_root, "clock": clock},
               paths=("root",), enter=True),
        Target("faults.disk.no_space", disk.no_space, {"root": disk_root, "clock": clock},
               paths=("root",), enter=True),
        Target("faults.disk.read_only", disk.read_only, {"root": disk_root, "clock": clock},
               paths=("root",), enter=True),
        Target("faults.disk.latency", disk.latency,
               {"root": disk_root, "seconds": 0.5, "clock": clock}, paths=("root",),
               enter=True),
        Target("faults.disk.crash_simulator", disk.crash_simulator,
               {"root": disk_root, "clock": clock}, paths=("root",), enter=True),
        Target("faults.disk.CrashSimulator", disk.CrashSimulator,
               {"root": disk_root, "clock": clock}, paths=("root",), enter=True),
        Target("faults.disk.explore", disk.explore,
               {"root": disk_root, "workload": noop, "check": never, "clock": clock},
               paths=("root",)),
        Target("faults.disk.aexplore", _synchronous(disk.aexplore),
               {"root": disk_root, "workload": noop, "check": never, "clock": clock},
               paths=("root",)),
        Target("faults.disk.explore_process", disk.explore_process,
               {"script": E.script, "root": disk_root, "check": never, "clock": clock},
               paths=("script", "root"), slow=True),
        Target("faults.disk.boundary", disk.boundary),
        # -- faults.subprocess ----------------------------------------------------------
        Target("faults.subprocess.not_found", fsub.not_found, {**cmd, "clock": clock},
               enter=True),
        Target("faults.subprocess.hang", fsub.hang, {**cmd, "clock": clock}, enter=True),
        Target("faults.subprocess.exits", fsub.exits, {**cmd, "clock": clock}, enter=True),
        Target("faults.subprocess.killed", fsub.killed, {**cmd, "clock": clock},
               enter=True),
        Target("faults.subprocess.slow_start", fsub.slow_start,
               {**cmd, "seconds": 1.0, "clock": clock}, enter=True),
        # -- faults.families / strategies (a family is built, a strategy drawn from) ----
        Target("faults.families.clock_skews", ffam.clock_skews),
        Target("faults.families.memory_pressures", ffam.memory_pressures),
        Target("faults.families.cuda_spikes", ffam.cuda_spikes),
        Target("faults.families.failpoints", ffam.failpoints, {"sites": ["a"]}),
        Target("faults.families.network_toxics", ffam.network_toxics, {"proxy": E.proxy}),
        Target("faults.families.NetworkToxics", ffam.NetworkToxics, {"proxy": E.proxy}),
        Target("faults.families.http_faults", ffam.http_faults, {"proxy": E.http_proxy}),
        Target("faults.families.HttpFaults", ffam.HttpFaults, {"proxy": E.http_proxy}),
        Target("faults.families.chroma_corruptions", ffam.chroma_corruptions,
               {"store": store}, paths=("store",)),
        Target("faults.families.ChromaCorruptions", ffam.ChromaCorruptions,
               {"store": store}, paths=("store",)),
        Target("faults.families.subprocess_failures", ffam.subprocess_failures, cmd),
        Target("faults.families.SubprocessFailures", ffam.SubprocessFailures, cmd),
        Target("faults.families.family_named", ffam.family_named, {"name": "clock"}),
        Target("faults.families.resolve_families", ffam.resolve_families,
               {"families": ["clock"]}),
        Target("faults.strategies.fault_plans", fst.fault_plans, draw=True),
        Target("faults.strategies.triggers", fst.triggers, {"horizon": 10.0, "calls": 5},
               draw=True),
        # -- pytest_resilience.validate (the value is fuzzed; its name is "value") -----
        *_validators(),
    ]


_SETTING = "a setting of the check itself, written by the component's author"


def _validators() -> list[Target]:
    """The checks of ``pytest_resilience.validate``, each given the hostile value under
    the name ``"value"`` (so its refusal must name it) with the other arguments valid."""
    from pytest_resilience import validate

    choices = {"choices": ("fast", "slow"), "what": "a mode"}
    table: list[tuple[str, dict[str, Any], bool]] = [
        ("callable_or_none", {}, False), ("callables", {}, False), ("clock", {}, False),
        ("count", {}, False), ("exception_types", {}, False), ("fraction", {}, False),
        ("history", {}, False), ("number", {}, False), ("one_of", choices, False),
        ("path", {}, False), ("seconds", {}, False), ("seed", {}, False),
        ("show", {}, False), ("text", {}, False),
        ("parsing", {"what": "a document", "accepted": "a dict"}, True),
    ]
    targets = []
    for name, extra, enter in table:
        fn = getattr(validate, name)
        params = inspect.signature(fn).parameters
        base = {"name": "value", **extra} if "name" in params else dict(extra)
        skip = {p: _SETTING for p in params if p != "value"}
        targets.append(Target(f"pytest_resilience.validate.{name}", fn, base, skip=skip,
                              enter=enter))
    targets.append(Target("pytest_resilience.validate.check", validate.check,
                          {"ok": False, "name": "value", "value": 1, "what": "valid",
                           "accepted": "a valid value"},
                          skip=dict.fromkeys(("ok", "name", "what", "accepted", "kind"), _SETTING)))
    return targets


_RECORD = "a record the library builds and returns: plain values, no settings"
_RETURNED = "the type a fuzzed factory returns; built through it"
_PROTOCOL = "a protocol, enum or type alias: nothing to construct"
_DATA = "acts on data or a live object it is handed: no settings"
_CHILD = ("an action that runs a child process (seconds per call); its settings are "
          "refused before it starts, tested beside it")

#: Public callables that take no settings to fuzz, by public spelling, and why.
EXEMPT: dict[str, str] = {
    **dict.fromkeys([
        "pytest_resilience.Attempt", "pytest_resilience.CheckResult",
        "pytest_resilience.DeadJob", "pytest_resilience.Event",
        "pytest_resilience.HealthReport", "pytest_resilience.ReplayResult",
        "pytest_resilience.RetryState", "pytest_resilience.QuarantinedJob",
        "pytest_resilience.Job", "pytest_resilience.memory.CacheStats",
        "pytest_resilience.memory.DeviceUsage", "pytest_resilience.memory.GPUPressure",
        "pytest_resilience.memory.MemoryReading", "pytest_resilience.memory.PressureChange",
        "pytest_resilience.chroma.BackupInfo", "pytest_resilience.chroma.BackupVerification",
        "pytest_resilience.chroma.Finding", "pytest_resilience.chroma.IntegrityReport",
        "pytest_resilience.chroma.RecoveryReport", "pytest_resilience.chroma.RestoreReport",
        "pytest_resilience.chroma.ChromaStore", "pytest_resilience.chroma.ProbeResult",
        "pytest_resilience.sla.Measurement", "pytest_resilience.sla.OperationStats",
        "pytest_resilience.sla.BudgetVerdict", "pytest_resilience.sla.Budget",
        "pytest_resilience.checks.Verdict", "pytest_resilience.chaos.ChaosResult",
        "pytest_resilience.chaos.ChaosRun", "pytest_resilience.report.Regression",
        "pytest_resilience.report.Rule", "pytest_resilience.migrations.AppliedMigration",
        "pytest_resilience.migrations.CrashFinding", "pytest_resilience.migrations.CrashReport",
        "pytest_resilience.migrations.Drift", "pytest_resilience.migrations.Migration",
        "pytest_resilience.migrations.MigrationReport", "pytest_resilience.migrations.Plan",
        "pytest_resilience.migrations.PlanStep", "pytest_resilience.migrations.Point",
        "pytest_resilience.migrations.Snapshot", "pytest_resilience.migrations.Status",
        "pytest_resilience.migrations.StatusEntry", "pytest_resilience.migrations.Step",
        "faults.chroma.Corruption", "faults.chroma.KillReport", "faults.chroma.Outcome",
        "faults.memory.OOMOutcome", "faults.network.ProxyStats", "faults.disk.CrashFailure",
        "faults.disk.CrashReport", "faults.disk.CrashState",
    ], _RECORD),
    **dict.fromkeys([
        "faults.ActivePlan", "faults.Trigger", "faults.Action", "faults.memory.MemoryPressure",
        "faults.cuda.FakeDevice", "faults.cuda.FakeGPU", "faults.cuda.OOMBudget",
        "faults.clock.ClockFault", "faults.network.SocketFault", "faults.network.Toxic",
        "faults.network.ToxicHandle", "faults.http.HttpFault", "faults.http.FaultHandle",
        "faults.disk.DiskFault", "faults.subprocess.SubprocessFault",
        "faults.families.ClockSkews", "faults.families.CudaSpikes", "faults.families.Failpoints",
        "faults.families.MemoryPressures", "pytest_resilience.Backoff",
        "pytest_resilience.chroma.ChromaTransaction",
        "pytest_resilience.observability.Correlation",
        "pytest_resilience.observability.FileLogging",
        "pytest_resilience.observability.TraceOperation",
    ], _RETURNED),
    **dict.fromkeys([
        "pytest_resilience.Clock", "pytest_resilience.Storage", "pytest_resilience.BreakerState",
        "pytest_resilience.FailurePolicy", "pytest_resilience.memory.Evictable",
        "pytest_resilience.memory.PressureLevel", "pytest_resilience.migrations.Backend",
        "pytest_resilience.migrations.Source", "pytest_resilience.chaos.Check",
        "faults.clock.Target", "faults.network.Direction", "faults.families.Family",
        "faults.families.PerRun", "faults.strategies.Generates", "faults.disk.Op",
        "faults.disk.Opaque",
    ], _PROTOCOL),
    **dict.fromkeys([
        "pytest_resilience.emit", "pytest_resilience.memory.measure_bytes",
        "pytest_resilience.chroma.record_problems", "pytest_resilience.chroma.validate_batch",
        "pytest_resilience.chroma.validate_record", "pytest_resilience.checks.snapshot",
        "pytest_resilience.observability.event_level",
        "pytest_resilience.observability.submit_in_context",
        "pytest_resilience.report.build_report", "pytest_resilience.report.render_html",
        "pytest_resilience.report.render_markdown", "faults.chroma.judge", "faults.disk.ack",
        "faults.network.down",
    ], _DATA),
    **dict.fromkeys([
        "pytest_resilience.chroma.verify_store", "pytest_resilience.chroma.averify_store",
        "pytest_resilience.chroma.seal_store", "pytest_resilience.chroma.make_store",
        "pytest_resilience.chroma.probe_store", "faults.chroma.classify", "faults.chroma.probe",
        "faults.chroma.kill_during", "faults.memory.real_oom",
        "pytest_resilience.migrations.explore_crashes",
    ], _CHILD),
    **dict.fromkeys(["pytest_resilience.patching.Patch", "pytest_resilience.patching.patch",
                     "pytest_resilience.patching.patched"],
                    "replaces an attribute of a live object it is handed (owner, name, "
                    "replacement): no settings; its refusals are tested beside it"),
    "pytest_resilience.arming.set_hook": "sets the process-wide arming hook (the plugin's); "
                                         "its refusal is tested in tests/plugin/"
                                         "test_per_test_hooks.py",
    "pytest_resilience.chroma.close_store": "closes the chromadb clients of a path",
    "pytest_resilience.chroma.recover": "an action on a store; tests/chroma/test_recover_"
                                        "safety.py covers its refusals",
    "pytest_resilience.chroma.transaction": "needs a live Chroma collection; "
                                            "tests/chroma/test_transaction.py",
    "pytest_resilience.chroma.latest_seal": "reads the seal files of a store",
    "pytest_resilience.chroma.vector_segments": "reads the SQLite file of a store",
    "pytest_resilience.memory.read_system_memory": "reads /proc and the cgroup files",
    "pytest_resilience.kinds.declare": "registers Kind(...) (fuzzed) in the process-wide "
                                       "table: fuzzing it would leak kinds into other tests",
    "faults.families.register_family": "registers in the process-wide family table: "
                                       "fuzzing it would leak families into other tests",
    "faults.chroma.corrupt": "needs a real Chroma store; tests/injectors/test_chroma_"
                             "faults.py covers its refusals",
    "faults.cuda.cuda_oom": "needs torch; tests/injectors/test_cuda_faults.py",
    "faults.cuda.cuda_spike": "needs a fake or real GPU; tests/injectors/test_cuda_faults.py",
}


#: Public callables the fuzz found refusing bad input unclearly, by public spelling, with
#: what it found: xfail (not strict) until fixed with ``pytest_resilience.validate``.
KNOWN_DEFECTS: dict[str, str] = {}


def _cases(labels: list[str]) -> list[Any]:
    """``labels`` as parameters, a known defect marked xfail with what the fuzz found."""
    return [pytest.param(label, marks=pytest.mark.xfail(reason=KNOWN_DEFECTS[label],
                                                        strict=False))
            if label in KNOWN_DEFECTS else label for label in labels]


_TABLE = _targets()
_BY_LABEL = {t.label: t for t in _TABLE}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Env]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with contextlib.chdir(tmp):  # nothing a fuzzed value names lands in the checkout
        made = _Env(tmp)
        try:
            yield made
        finally:
            made.close()


def _labels() -> list[str]:
    return [t.label for t in _TABLE]


def _params(target: Target) -> tuple[str, ...]:
    signature = inspect.signature(target.build)
    return tuple(n for n, p in signature.parameters.items()
                 if p.kind is not p.VAR_KEYWORD and n not in target.skip
                 and n not in ("self", "cls"))


def _call_with(target: Target, kwargs: Mapping[str, Any]) -> Any:
    signature = inspect.signature(target.build)
    star = next((n for n, p in signature.parameters.items()
                 if p.kind is p.VAR_POSITIONAL), None)
    named = dict(kwargs)
    args = (named.pop(star),) if star in named else ()
    positional = [n for n, p in signature.parameters.items()
                  if p.kind is p.POSITIONAL_OR_KEYWORD]
    if args:  # names before *args must then be passed by position
        lead = [named.pop(n) for n in positional if n in named]
        return target.build(*lead, *args, **named)
    return target.build(**named)


@contextlib.contextmanager
def _built(target: Target, kwargs: Mapping[str, Any], data: st.DataObject) -> Iterator[None]:
    obj = _call_with(target, kwargs)
    try:
        if target.enter:
            with obj:
                pass
        if target.draw:
            data.draw(obj, label="drawn")
        yield
    finally:
        if target.close is not None:
            target.close(obj)


def _public_callables(public_modules: tuple[str, ...]) -> dict[str, Any]:
    found = {}
    for module_name in public_modules:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if callable(obj) and not (isinstance(obj, type)
                                      and issubclass(obj, BaseException)):
                found[f"{module_name}.{name}"] = obj
    return found


def _takes_no_arguments(obj: Any) -> bool:
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    return not params


def test_every_public_name_is_fuzzed_or_exempt(public_modules: tuple[str, ...]) -> None:
    labels = [*_labels(), *(label.split("[")[0] for label in PARSERS)]
    missing = [
        spelling for spelling, obj in _public_callables(public_modules).items()
        if spelling not in EXEMPT and not _takes_no_arguments(obj)
        and not any(label == spelling or label.startswith(f"{spelling}.")
                    for label in labels)
    ]
    assert missing == []


def test_the_tables_name_only_public_callables(public_modules: tuple[str, ...]) -> None:
    public = _public_callables(public_modules)
    stale = sorted(s for s in EXEMPT if s not in public)
    unknown = [label for label in _labels()
               if label not in public and label.rsplit(".", 1)[0] not in public]
    fuzzed_and_exempt = sorted(set(_labels()) & set(EXEMPT))
    stale_defects = sorted(set(KNOWN_DEFECTS) - {*_labels(), *PARSERS})
    assert (stale, unknown, fuzzed_and_exempt, stale_defects) == ([], [], [], [])


def test_enough_examples() -> None:
    assert sum(t.examples for t in _TABLE) + len(PARSERS) * EXAMPLES >= 2000


def _fuzz_once(env: _Env, target: Target, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(_params(target)), label="argument")
    value = data.draw(not_a_path() if name in target.paths else hostile(), label="value")
    try:
        with _built(target, {**env.resolve(target.base), name: value}, data):
            pass
    except BaseException as exc:  # judged below, never swallowed
        _check_error(exc, (name,))


_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@pytest.mark.parametrize("label", _cases([t.label for t in _TABLE if not t.slow]))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=_HEALTH,
          derandomize=DERANDOMIZE)
@given(data=st.data())
def test_constructor_refuses_clearly(env: _Env, label: str, data: st.DataObject) -> None:
    _fuzz_once(env, _BY_LABEL[label], data)


@pytest.mark.parametrize("label", _cases([t.label for t in _TABLE if t.slow]))
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=_HEALTH,
          derandomize=DERANDOMIZE)
@given(data=st.data())
def test_slow_constructor_refuses_clearly(env: _Env, label: str, data: st.DataObject) -> None:
    _fuzz_once(env, _BY_LABEL[label], data)


_HISTORY_TARGETS = [t.label for t in _TABLE if "history" in _params(t)]
#: What ``history=`` may not be, for every target: a number, a string, a list of
#: non-events, a plain object, a clock (the argument next to it).
_NOT_HISTORIES = [42, "history", [1], object(), VirtualClock()]


def test_the_history_table_covers_the_components_and_faults() -> None:
    assert {"pytest_resilience.sla.SLARecorder", "pytest_resilience.checks.check_retry",
            "faults.FaultScope", "faults.memory.memory_pressure",
            "faults.network.FaultProxy"} <= set(_HISTORY_TARGETS)


@pytest.mark.parametrize("value", _NOT_HISTORIES, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("label", _HISTORY_TARGETS)
def test_history_is_refused_before_the_first_event(env: _Env, label: str,
                                                   value: object) -> None:
    """Every ``history=`` is checked when built (or, for a generator-based context
    manager, on entry), not at the first event (it was an AttributeError there)."""
    target = _BY_LABEL[label]
    kwargs = {**env.resolve(target.base), "history": value}
    with pytest.raises(TypeError, match=r"^history=.+ is not a history\. Pass a History "
                                        r"\(the test's `history` fixture\)"):
        _build_and_enter(target, kwargs)


def _build_and_enter(target: Target, kwargs: Mapping[str, Any]) -> None:
    obj = _call_with(target, kwargs)
    if target.enter:
        with obj:
            pass


# -- parsers -----------------------------------------------------------------------------

ParserEntry = tuple[Callable[[Any], Any], Any, tuple[str, ...]]


def _valid_documents(tmp: Path) -> dict[str, ParserEntry]:
    """``label: (parse, valid input, names a message may use)``; a label is the public
    spelling of the parser, with a ``[variant]`` when one parser gets two documents."""
    import faults
    from faults import Scheduled
    from pytest_resilience import Event, History
    from pytest_resilience.report import Rule, load_report
    from pytest_resilience.sla import Budget, LatencyHistogram, OperationStats

    histogram = LatencyHistogram()
    histogram.record_many([0.01, 0.02, 0.5])
    stats = OperationStats(latency=histogram)
    plan = faults.FaultPlan([
        faults.Fault("a", faults.Action.raise_(ValueError("x")), faults.Trigger.nth(2)),
        faults.Fault("b", faults.Action.delay(0.5), faults.Trigger.rate(0.5)),
        faults.Fault("c", faults.Action.returns(3), faults.Trigger.after(1.0)),
    ], seed=3)
    chaos = faults.FaultPlan(plan.faults, 3,
                             scheduled=(Scheduled("clock", "skew", 1.0, {"seconds": 2}),),
                             decisions=(0.5,), draws=(1, 0.25))
    event = Event(0, 1.0, "retry.attempt", "svc", {"attempt": 1})
    names_histogram = ("data", "count", "sum", "min", "max", "index", "counts", "v", "alpha")
    names_event = ("data", "text", "seq", "time", "kind", "source", "attrs")
    names_plan = ("data", "text", "version", "seed", "faults", "failpoint", "trigger",
                  "action", "kind", "value", "seconds", "exception", "args", "fn", "n", "p",
                  "scheduled", "decisions", "draws", "family", "at", "params")
    report_file = tmp / "report.json"

    def report_from_text(text: Any) -> Any:
        if not isinstance(text, str):
            return load_report(text)  # not text: the path argument itself is hostile
        report_file.write_text(text, encoding="utf-8")
        return load_report(report_file)

    return {
        "faults.FaultPlan.from_dict": (faults.FaultPlan.from_dict, plan.to_dict(),
                                       names_plan),
        "faults.FaultPlan.from_json": (faults.FaultPlan.from_json, plan.to_json(),
                                       names_plan),
        "faults.Fault.from_dict": (faults.Fault.from_dict, plan.faults[0].to_dict(),
                                   names_plan),
        "faults.Action.from_dict": (faults.Action.from_dict,
                                    plan.faults[0].action.to_dict(), names_plan),
        "faults.Trigger.from_dict": (faults.Trigger.from_dict,
                                     plan.faults[0].trigger.to_dict(), names_plan),
        "faults.FaultPlan.from_dict[chaos]": (faults.FaultPlan.from_dict, chaos.to_dict(),
                                              names_plan),
        "faults.FaultPlan.from_json[chaos]": (faults.FaultPlan.from_json, chaos.to_json(),
                                              names_plan),
        "faults.Scheduled.from_dict": (Scheduled.from_dict, chaos.scheduled[0].to_dict(),
                                       names_plan),
        "pytest_resilience.sla.LatencyHistogram.from_dict": (
            LatencyHistogram.from_dict, histogram.to_dict(), names_histogram),
        "pytest_resilience.sla.OperationStats.from_dict": (
            OperationStats.from_dict, stats.to_dict(),
            (*names_histogram, "histogram", "errors", "span")),
        "pytest_resilience.Event.from_dict": (Event.from_dict, event.to_dict(), names_event),
        "pytest_resilience.History.from_jsonl": (
            History.from_jsonl, json.dumps(event.to_dict()) + "\n", names_event),
        "pytest_resilience.sla.Budget.parse": (Budget.parse, "search:p95<200ms",
                                               ("text", "budget")),
        "pytest_resilience.report.Rule.parse": (Rule.parse, "p99:+10%", ("text", "rule")),
        "pytest_resilience.report.load_report[json]": (
            report_from_text, json.dumps(_empty_report()), ("path",)),
    }


PARSERS = sorted(_valid_documents(Path("/nonexistent")))
_PARSER_METHODS = ("from_dict", "from_json", "from_jsonl", "parse")


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ParserEntry]:
    return _valid_documents(tmp_path_factory.mktemp("documents"))


def test_every_parser_is_fuzzed(public_modules: tuple[str, ...]) -> None:
    """Every ``from_dict``/``from_json``/``from_jsonl``/``parse`` of a public class, and
    every public ``load_*`` function that reads a document (``load_report``)."""
    found = set()
    for spelling, obj in _public_callables(public_modules).items():
        if isinstance(obj, type):
            found.update(f"{spelling}.{m}" for m in _PARSER_METHODS if m in vars(obj))
        elif spelling.rsplit(".", 1)[1].startswith("load_"):
            found.add(spelling)
    fuzzed = {label.split("[")[0] for label in PARSERS}
    directory_loaders = {"pytest_resilience.migrations.load_migrations"}  # a constructor
    assert found - directory_loaders == fuzzed
    assert directory_loaders <= set(_labels())


def _mutate(value: Any, rng: random.Random, replacement: Any) -> Any:
    """``value`` with one nested item replaced, dropped or its container swapped."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(sorted(value, key=str))
        out = dict(value)
        roll = rng.random()
        if roll < 0.25:
            del out[key]
        elif roll < 0.6:
            out[key] = _mutate(out[key], rng, replacement)
        else:
            out[key] = replacement
        return out
    if isinstance(value, list) and value and rng.random() < 0.8:
        out_list = list(value)
        i = rng.randrange(len(out_list))
        out_list[i] = _mutate(out_list[i], rng, replacement) if rng.random() < 0.5 \
            else replacement
        return out_list
    return replacement


def _as_text(value: Any) -> str:
    """``value`` as JSON text: what JSON cannot hold (bytes, types, an object whose
    ``repr`` raises) becomes a string naming its type, and a document nested too deep
    to encode becomes text nested as deep. Never ``repr``: the harness must not fail
    on the hostile values it hands to the parsers."""
    try:
        return json.dumps(value, default=lambda v: f"<{type(v).__name__}>")
    except RecursionError:
        return "[" * 5000 + "]" * 5000


@pytest.mark.parametrize("label", _cases(PARSERS))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=_HEALTH,
          derandomize=DERANDOMIZE)
@given(data=st.data())
def test_parser_refuses_clearly(documents: dict[str, ParserEntry], label: str,
                                data: st.DataObject) -> None:
    parse, valid, names = documents[label]
    text_input = isinstance(valid, str)
    how = data.draw(st.sampled_from(["mutate", "random", "hostile"]), label="how")
    if how == "mutate":
        json_text = "json" in label and "jsonl" not in label
        document = json.loads(valid) if json_text else valid
        if isinstance(document, str):
            cut = data.draw(st.integers(0, len(document)), label="cut")
            junk = data.draw(st.text(max_size=4), label="junk")
            candidate: Any = document[:cut] + junk + document[cut:]
        else:
            seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
            candidate = _mutate(document, random.Random(seed),
                                data.draw(st.one_of(json_values(), hostile()),
                                          label="replacement"))
            if text_input:
                candidate = _as_text(candidate)
    elif how == "random":
        candidate = data.draw(json_values(), label="document")
        if text_input:
            candidate = _as_text(candidate)
    else:
        candidate = data.draw(hostile(), label="document")
    try:
        parse(candidate)
    except BaseException as exc:  # judged below, never swallowed
        _check_error(exc, names)


def test_the_harness_turns_every_hostile_value_into_json_text() -> None:
    """Regression: ``_as_text`` used ``repr`` on what JSON cannot hold, so a document
    holding ``_Opaque`` failed in the harness, before the parser saw it."""
    for value in _SPECIALS:
        text = _as_text({"faults": [value]})
        assert isinstance(text, str)
        assert text.startswith(("{", "["))


@pytest.mark.parametrize("label", _cases(PARSERS))
def test_every_parser_refuses_every_special_value(documents: dict[str, ParserEntry],
                                                  label: str) -> None:
    parse, _valid, names = documents[label]
    for value in _SPECIALS:
        try:
            parse(value)
        except BaseException as exc:  # judged below, never swallowed
            _check_error(exc, names)
