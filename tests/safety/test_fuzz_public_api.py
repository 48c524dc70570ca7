"""Fuzz every public constructor and every ``from_dict`` / ``from_json`` / ``parse``.

One argument at a time gets a hostile value (huge ints, infinities, NaN, bools, strings,
containers, types, callables, deep nesting); the only errors allowed are ``ValueError``,
``TypeError`` and ``ResilienceError`` subclasses, and the message must name the argument
(for a parser: the argument or the field of the document that is wrong). Parsers get
random JSON-like data and mutated valid documents. Regression for issue 14, defect 11
(27 kinds of undocumented errors: OverflowError, KeyError, AttributeError,
RecursionError, AssertionError ...). ``test_every_public_name``
keeps the tables complete: a new public class or factory must be fuzzed here or listed
with the reason it takes no settings.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import random
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

#: Examples per target; the tables hold enough targets that a run draws >= 2,000.
EXAMPLES = 30
ALLOWED = (ValueError, TypeError, ResilienceError)


class _Opaque:
    """An object of no useful type, with a repr that raises."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text("<opaque: repr raises>")  # how Hypothesis prints a failing example


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


_SPECIALS: list[Any] = [
    None, True, False, 0, 1, -1, 2**31, 2**63, 2**64 + 1, 10**400, -(10**400), 2**1024,
    0.0, -0.0, 1e-320, 1e308, float("inf"), float("-inf"), float("nan"), "", "30", "1e999",
    "nan", " ", "x" * 300, b"", b"\x00", 1j, Decimal("1.5"), Decimal("NaN"), Fraction(1, 3),
    [], [1], {}, {"a": 1}, (), (1, 2), (ValueError, 42), ValueError, Exception,
    BaseException, int, object, object(), _Opaque(), print, lambda: None, Path("/"),
    _nested(5000), set(), frozenset({1}),
]


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


def json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON-like data."""
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6),
                        st.floats(allow_nan=True, allow_infinity=True),
                        st.sampled_from([10**400, 2**64, -(2**63) - 1]))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
        max_leaves=20)


def _mentions(message: str, names: tuple[str, ...]) -> bool:
    return any(name in message for name in names)


def _check_error(exc: BaseException, names: tuple[str, ...]) -> None:
    assert isinstance(exc, ALLOWED), f"undocumented {type(exc).__name__}: {exc}"
    assert _mentions(str(exc), names), f"message does not name {names}: {exc}"


# -- constructors ------------------------------------------------------------------------


@dataclass
class Target:
    """One public constructor: how to call it, with which valid arguments."""

    label: str
    build: Callable[..., Any]
    base: dict[str, Any] = field(default_factory=dict)
    skip: tuple[str, ...] = ()
    enter: bool = False  # a context-manager factory: its checks run on entry
    close: Callable[[Any], Any] | None = None


def _close(obj: Any) -> None:
    obj.close()


def _targets(tmp: Path) -> list[Target]:
    import faults
    import pytest_resilience as pr
    from faults import clock as fclock
    from faults import cuda, memory, network
    from faults import families as ffam
    from faults import strategies as fst
    from pytest_resilience import chroma, observability, sla
    from pytest_resilience import memory as pmem

    clock = VirtualClock()
    return [
        Target("Backoff.exponential", pr.Backoff.exponential),
        Target("Backoff.linear", pr.Backoff.linear),
        Target("Backoff.constant", pr.Backoff.constant),
        Target("Retry", pr.Retry, {"clock": clock}),
        Target("retry", pr.retry, {"clock": clock}),
        Target("RetryBudget", pr.RetryBudget, {"clock": clock}),
        Target("CircuitBreaker", pr.CircuitBreaker, {"clock": clock}),
        Target("TokenBucket", pr.TokenBucket, {"rate": 1.0, "capacity": 2.0, "clock": clock}),
        Target("RateLimiter", pr.RateLimiter, {"clock": clock}),
        Target("TimeoutLock", pr.TimeoutLock, {"clock": clock}),
        Target("FairSemaphore", pr.FairSemaphore, {"clock": clock}),
        Target("AsyncRWLock", pr.AsyncRWLock, {"clock": clock}),
        Target("ResourcePool", pr.ResourcePool, {"factory": object, "size": 2,
                                                 "clock": clock}),
        Target("HealthRegistry", pr.HealthRegistry, {"clock": clock}),
        Target("DeadLetterQueue", pr.DeadLetterQueue,
               {"path": tmp / "dlq.sqlite3", "clock": clock}, skip=("path",), close=_close),
        Target("VirtualClock", pr.VirtualClock),
        Target("MemoryPressureMonitor", pmem.MemoryPressureMonitor,
               {"clock": clock, "reader": lambda: None}, skip=("cgroup_root",)),
        Target("GPUMonitor", pmem.GPUMonitor, {"clock": clock, "reader": list}),
        Target("ModelCache", pmem.ModelCache, {"clock": clock}),
        Target("BackupManager", chroma.BackupManager,
               {"store": tmp / "store", "directory": tmp / "backups", "clock": clock},
               skip=("store", "directory", "encrypt_to", "key_file", "key_env")),
        Target("StoreLock", chroma.StoreLock, {"store": tmp / "store", "clock": clock},
               skip=("store",)),
        Target("RecordRules", chroma.RecordRules),
        Target("SLARecorder", sla.SLARecorder, {"clock": clock}),
        Target("Redactor", observability.Redactor),
        Target("PrometheusMetrics", observability.PrometheusMetrics, skip=("registry",)),
        Target("log_events", observability.log_events, close=_close),
        Target("trace_operation", observability.trace_operation, {"name": "op",
                                                                   "clock": clock}),
        Target("Trigger.nth", faults.Trigger.nth, {"n": 1}),
        Target("Trigger.first", faults.Trigger.first, {"n": 1}),
        Target("Trigger.rate", faults.Trigger.rate, {"p": 0.5}),
        Target("Trigger.after", faults.Trigger.after, {"seconds": 1.0}),
        Target("Action.raise_", faults.Action.raise_),
        Target("Action.delay", faults.Action.delay, {"seconds": 1.0}),
        Target("Action.call", faults.Action.call, {"fn": print}),
        Target("Fault", faults.Fault, {"failpoint": "db.write",
                                       "action": faults.Action.raise_()}),
        Target("FaultPlan", faults.FaultPlan),
        Target("FaultScope", faults.FaultScope, {"clock": clock}),
        Target("activate", faults.activate, {"target": [], "clock": clock}),
        Target("inject", faults.inject, {"name": "fuzz.point", "clock": clock}),
        Target("oom_at", memory.oom_at, {"target": "fuzz.oom", "clock": clock},
               enter=True),
        Target("memory_pressure", memory.memory_pressure, {"percent": 50.0,
                                                           "clock": clock}, enter=True),
        Target("fake_gpu", cuda.fake_gpu, {"clock": clock}, enter=True),
        Target("skew", fclock.skew, {"seconds": 1.0, "clock": clock},
               skip=("clock", "exclude"), enter=True),
        Target("drift", fclock.drift, {"rate": 1.5, "clock": clock},
               skip=("clock", "exclude"), enter=True),
        Target("jump", fclock.jump, {"to": 1.0e9, "clock": clock}, skip=("clock",),
               enter=True),
        Target("latency", network.latency, {"ms": 10.0}),
        Target("timeout", network.timeout, {"ms": 10.0}),
        Target("bandwidth", network.bandwidth, {"kb_per_s": 10.0}),
        Target("slicer", network.slicer, {"avg_size": 10}),
        Target("limit_data", network.limit_data, {"nbytes": 10}),
        Target("reset_peer", network.reset_peer),
        Target("slow_close", network.slow_close, {"ms": 10.0}),
        Target("FaultProxy", network.FaultProxy, {"upstream": ("127.0.0.1", 9),
                                                  "clock": clock}),
        Target("clock_skews", ffam.clock_skews),
        Target("memory_pressures", ffam.memory_pressures),
        Target("cuda_spikes", ffam.cuda_spikes),
        Target("failpoints", ffam.failpoints, {"sites": ["a"]}),
        Target("fault_plans", fst.fault_plans),
    ]


#: Public callables that take no settings to fuzz, and why.
NOT_CONSTRUCTORS = {
    # records and results: built by the library, plain values
    "Attempt", "CheckResult", "DeadJob", "Event", "HealthReport", "ReplayResult",
    "RetryState", "CacheStats", "DeviceUsage", "GPUPressure", "MemoryReading",
    "PressureChange", "BackupInfo", "BackupVerification", "Finding", "IntegrityReport",
    "RecoveryReport", "RestoreReport", "Measurement", "OperationStats", "Verdict",
    "Correlation", "FileLogging", "TraceOperation", "ChaosResult", "ChaosRun", "Regression",
    "OOMOutcome", "MemoryPressure", "FakeDevice", "FakeGPU", "OOMBudget", "Corruption",
    "KillReport", "Outcome", "ClockFault", "ProxyStats", "SocketFault", "ToxicHandle",
    "Toxic", "ActivePlan", "Scheduled", "ChaosPlan", "Budget", "BudgetVerdict", "Rule",
    "ChromaStore", "EventLogging", "HumanFormatter", "JsonFormatter", "ChaosClock",
    "Trigger", "Action", "QuarantinedJob", "LatencyHistogram",  # no settings; parsers fuzzed
    # protocols and enums
    "Clock", "Evictable", "BreakerState", "PressureLevel", "Family", "PerRun", "Target",
    "Direction", "Check",
    # functions that act (not settings): their arguments are data or live objects
    "SystemClock", "History", "active_history", "add_listener", "emit", "recording",
    "measure_bytes", "read_gpu_devices", "read_system_memory", "averify_store",
    "close_store", "make_store", "record_problems", "recover", "seal_store",
    "validate_batch", "validate_record", "verify_store", "min_samples", "bind",
    "correlation", "current_context", "current_correlation_id", "event_level",
    "log_to_files", "peak_rss", "submit_in_context", "check_breaker", "check_eviction",
    "check_latency", "check_retry", "check_rollback", "recording_cache", "snapshot",
    "replay", "run_chaos", "build_report", "compare_reports", "load_report",
    "render_html", "render_markdown", "afailpoint", "armed_failpoints", "disarm_all",
    "failpoint", "instrument", "allow_plan_modules", "real_oom", "cuda_oom", "cuda_spike",
    "classify", "corrupt",
    "fail_during", "judge", "kill_during", "probe", "connection_refused", "dns_failure",
    "down", "slow_connect", "register_family", "network_toxics", "chroma_corruptions",
    "ChromaCorruptions", "NetworkToxics", "ClockSkews", "CudaSpikes", "Failpoints",
    "MemoryPressures", "ValidatingCollection", "ChromaTransaction", "transaction",
    "PybreakerRecorder", "TenacityRecorder", "CheckFailed", "ChaosFailure", "ChaosVacuous",
    "ModelLoadError",
}

PUBLIC_MODULES = (
    "pytest_resilience", "pytest_resilience.memory", "pytest_resilience.chroma",
    "pytest_resilience.sla", "pytest_resilience.observability", "pytest_resilience.checks",
    "pytest_resilience.chaos", "pytest_resilience.report", "faults", "faults.memory",
    "faults.cuda", "faults.chroma", "faults.clock", "faults.network", "faults.strategies",
)


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "store").mkdir()
    return {t.label: t for t in _targets(tmp)}


def _labels() -> list[str]:
    return [t.label for t in _targets(Path("/nonexistent"))]


def _params(target: Target) -> tuple[str, ...]:
    signature = inspect.signature(target.build)
    return tuple(n for n, p in signature.parameters.items()
                 if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                 and n not in target.skip and n not in ("self", "cls", "history"))


@contextlib.contextmanager
def _built(target: Target, kwargs: Mapping[str, Any]) -> Iterator[None]:
    obj = target.build(**kwargs)
    try:
        if target.enter:
            with obj:
                pass
        yield
    finally:
        if target.close is not None:
            target.close(obj)


def test_every_public_name_is_fuzzed_or_exempt() -> None:
    fuzzed = {label.split(".")[0] for label in _labels()}
    missing = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if not callable(obj) or (isinstance(obj, type) and issubclass(obj,
                                                                          BaseException)):
                continue
            if name not in fuzzed and name not in NOT_CONSTRUCTORS and \
                    name.lower() not in {f.lower() for f in fuzzed}:
                missing.append(f"{module_name}.{name}")
    assert missing == []


def test_enough_examples() -> None:
    assert len(_labels()) * EXAMPLES + len(PARSERS) * EXAMPLES >= 2000


@pytest.mark.parametrize("label", _labels())
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(data=st.data())
def test_constructor_refuses_clearly(targets: dict[str, Target], label: str,
                                     data: st.DataObject) -> None:
    target = targets[label]
    params = _params(target)
    name = data.draw(st.sampled_from(params), label="argument")
    value = data.draw(hostile(), label="value")
    kwargs = {**target.base, name: value}
    try:
        with _built(target, kwargs):
            pass
    except BaseException as exc:  # judged below, never swallowed
        _check_error(exc, (name,))


# -- parsers -----------------------------------------------------------------------------


def _valid_documents() -> dict[str, tuple[Callable[[Any], Any], Any, tuple[str, ...]]]:
    """``label: (parse, valid input, names a message may use)``."""
    import faults
    from faults import Scheduled
    from pytest_resilience import Event, History
    from pytest_resilience.report import Rule
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
    return {
        "FaultPlan.from_dict": (faults.FaultPlan.from_dict, plan.to_dict(), names_plan),
        "FaultPlan.from_json": (faults.FaultPlan.from_json, plan.to_json(), names_plan),
        "Fault.from_dict": (faults.Fault.from_dict, plan.faults[0].to_dict(), names_plan),
        "Action.from_dict": (faults.Action.from_dict, plan.faults[0].action.to_dict(),
                             names_plan),
        "Trigger.from_dict": (faults.Trigger.from_dict, plan.faults[0].trigger.to_dict(),
                              names_plan),
        "FaultPlan.from_dict[chaos]": (faults.FaultPlan.from_dict, chaos.to_dict(),
                                       names_plan),
        "FaultPlan.from_json[chaos]": (faults.FaultPlan.from_json, chaos.to_json(),
                                       names_plan),
        "Scheduled.from_dict": (Scheduled.from_dict, chaos.scheduled[0].to_dict(),
                                names_plan),
        "LatencyHistogram.from_dict": (LatencyHistogram.from_dict, histogram.to_dict(),
                                       names_histogram),
        "OperationStats.from_dict": (OperationStats.from_dict, stats.to_dict(),
                                     (*names_histogram, "histogram", "errors", "span")),
        "Event.from_dict": (Event.from_dict, event.to_dict(), names_event),
        "History.from_jsonl": (History.from_jsonl, json.dumps(event.to_dict()) + "\n",
                               names_event),
        "Budget.parse": (Budget.parse, "search:p95<200ms", ("text", "budget")),
        "Rule.parse": (Rule.parse, "p99:+10%", ("text", "rule")),
    }


PARSERS = [
    "FaultPlan.from_dict", "FaultPlan.from_json", "Fault.from_dict", "Action.from_dict",
    "Trigger.from_dict", "FaultPlan.from_dict[chaos]", "FaultPlan.from_json[chaos]",
    "Scheduled.from_dict",
    "LatencyHistogram.from_dict", "OperationStats.from_dict", "Event.from_dict",
    "History.from_jsonl", "Budget.parse", "Rule.parse",
]


def test_every_parser_is_fuzzed() -> None:
    found = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type):
                found.update(f"{name}.{m}" for m in ("from_dict", "from_json", "from_jsonl",
                                                     "parse") if m in vars(obj))
    assert found == set(PARSERS)


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
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


@pytest.mark.parametrize("label", PARSERS)
@settings(max_examples=EXAMPLES, deadline=None)
@given(data=st.data())
def test_parser_refuses_clearly(label: str, data: st.DataObject) -> None:
    parse, valid, names = _valid_documents()[label]
    text_input = isinstance(valid, str)
    how = data.draw(st.sampled_from(["mutate", "random", "hostile"]), label="how")
    if how == "mutate":
        document = json.loads(valid) if text_input and label.endswith("json") else valid
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



@pytest.mark.parametrize("label", PARSERS)
def test_every_parser_refuses_every_special_value(label: str) -> None:
    parse, _valid, names = _valid_documents()[label]
    for value in _SPECIALS:
        try:
            parse(value)
        except BaseException as exc:  # judged below, never swallowed
            _check_error(exc, names)
