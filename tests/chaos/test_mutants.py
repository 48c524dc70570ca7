"""Mutation demonstration: the chaos runner + checkers catch a deliberately broken variant
of each real component within the default example budget (100 plans), print the shrunk
plan, and pass the correct component over 500 plans.

Mutants are small subclasses of the real components, defined here:
retry without backoff, a breaker that never half-opens, a cache that evicts the most
recently used entry under pressure, a transaction that forgets deletes on rollback.
Run with ``-rP`` (or ``-s``) to see each mutant's shrunk plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import faults
from faults import Action
from faults.families import failpoints
from pytest_resilience._backoff import Backoff
from pytest_resilience._breaker import CircuitBreaker
from pytest_resilience._errors import CircuitOpenError, RetryError
from pytest_resilience._events import History
from pytest_resilience._retry import Retry
from pytest_resilience.chaos import ChaosFailure, ChaosRun, run_chaos
from pytest_resilience.checks import check_breaker, check_eviction, check_retry
from pytest_resilience.checks._rollback import check_rollback, snapshot

CORRECT_PLANS = 500
DEFAULT_BUDGET = 100  # run_chaos's max_examples


def catch(body: Callable[[ChaosRun], Any], **settings: Any) -> ChaosFailure:
    """Run the default budget; the mutant must be caught. Prints the shrunk plan."""
    with pytest.raises(ChaosFailure) as info:
        run_chaos(body, seed=20261123, **settings)
    failure = info.value
    print(failure)  # shown with -rP: the minimal plan and its replay line
    assert failure.found_at <= DEFAULT_BUDGET
    assert failure.plan.to_json(indent=2) in str(failure)
    return failure


def survive(body: Callable[[ChaosRun], Any], **settings: Any) -> None:
    result = run_chaos(body, seed=20261123, max_examples=CORRECT_PLANS, **settings)
    assert result.plans >= CORRECT_PLANS
    assert result.failures == 0


# -- retry ------------------------------------------------------------------------------
BACKOFF = Backoff.exponential(base=0.1, factor=2.0, max=2.0)
DB = failpoints({"db.read": [Action.raise_(ConnectionError("reset"))]})


class NoBackoffRetry(Retry):
    """Mutant: ignores its backoff and retries at once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backoff = Backoff.constant(0.0)


def retry_body(cls: type[Retry], jitter: str) -> Callable[[ChaosRun], None]:
    def body(run: ChaosRun) -> None:
        seed = run.rng.randrange(2**32)  # the jitter stream, drawn from Hypothesis per plan
        policy = cls(attempts=4, backoff=BACKOFF, jitter=jitter, seed=seed, clock=run.clock,
                     name="db")
        for _ in range(3):
            try:
                policy.call(faults.failpoint, "db.read", "row")
            except RetryError:
                run.reached("gave up")
            run.clock.sleep(1.0)

    return body


def retry_settings(jitter: str) -> dict[str, Any]:
    def check(history: History) -> Any:
        return check_retry(history, source="db", attempts=4, backoff=BACKOFF, jitter=jitter)

    return {"families": [DB], "checks": [check], "must_fire": ["db.read"]}


@pytest.mark.parametrize(("jitter", "caught_by"), [
    ("equal", "outside the equal-jitter envelope"),
    ("full", "Full jitter draws each delay uniformly from [0, delay], which stays that "
             "short with probability 0"),
])
def test_retry_without_backoff_is_caught(jitter: str, caught_by: str) -> None:
    failure = catch(retry_body(NoBackoffRetry, jitter), **retry_settings(jitter))
    assert failure.plan.faults[0].failpoint == "db.read"
    assert len(failure.plan) == 1
    assert caught_by in str(failure)


@pytest.mark.parametrize("jitter", ["equal", "full"])
def test_the_real_retry_passes_500_plans(jitter: str) -> None:
    survive(retry_body(Retry, jitter), sometimes=["gave up"], **retry_settings(jitter))


# -- circuit breaker --------------------------------------------------------------------
SVC = failpoints({"svc.call": [Action.raise_(ConnectionError("down"))]})


class NeverHalfOpens(CircuitBreaker):
    """Mutant: once OPEN it never lets a trial call through."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recovery_timeout = math.inf


def breaker_body(cls: type[CircuitBreaker]) -> Callable[[ChaosRun], None]:
    def body(run: ChaosRun) -> None:
        breaker = cls(failure_threshold=3, recovery_timeout=5.0, clock=run.clock, name="svc")
        for _ in range(20):
            try:
                breaker.call(faults.failpoint, "svc.call")
            except ConnectionError:
                pass
            except CircuitOpenError:
                run.reached("rejected while open")
            run.clock.sleep(1.0)

    return body


BREAKER = {"families": [SVC], "must_fire": ["svc.call"],
           "checks": [lambda h: check_breaker(h, source="svc", recovery_timeout=5.0)]}


def test_a_breaker_that_never_half_opens_is_caught() -> None:
    failure = catch(breaker_body(NeverHalfOpens), **BREAKER)
    assert len(failure.plan) == 1
    assert "it never half-opened" in str(failure)


def test_the_real_breaker_passes_500_plans() -> None:
    survive(breaker_body(CircuitBreaker), sometimes=["rejected while open"], **BREAKER)


# -- model cache under memory pressure --------------------------------------------------
TOTAL = 1_000_000
HOST = failpoints({"host.memory": [Action.returns(0.75), Action.returns(0.85),
                                   Action.returns(0.97)]})


@pytest.fixture
def no_gc_per_eviction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each eviction runs a full GC pass (tens of ms): real time, not behaviour."""
    monkeypatch.setattr("pytest_resilience.memory._cache.release_memory", lambda: None)


def cache_classes() -> tuple[Any, ...]:
    from pytest_resilience.memory._cache import ModelCache
    from pytest_resilience.memory._pressure import MemoryPressureMonitor
    from pytest_resilience.memory._reading import MemoryReading

    class EvictsMostRecent(ModelCache):
        """Mutant: under pressure, evicts the most recently used entries first."""

        def evict_bytes(self, nbytes: int, *, cause: str = "pressure") -> int:
            start = self.tracked_bytes()
            while start - self.tracked_bytes() < nbytes and len(self):
                self.evict(self.keys()[-1], cause=cause)
            return start - self.tracked_bytes()

    return ModelCache, EvictsMostRecent, (MemoryPressureMonitor, MemoryReading)


def cache_body(cache_cls: type[Any]) -> Callable[[ChaosRun], None]:
    _, _, (monitor_cls, reading_cls) = cache_classes()

    def reader() -> Any:
        fraction = faults.failpoint("host.memory", 0.5)
        return reading_cls(used=int(fraction * TOTAL), total=TOTAL, source="chaos")

    def body(run: ChaosRun) -> None:
        cache = cache_cls(capacity_bytes=1000, clock=run.clock, name="models",
                          loader=lambda key: f"weights:{key}")
        monitor = monitor_cls(cooldown=0.0, reader=reader, clock=run.clock, name="host")
        monitor.register(cache)
        for key in ["a", "b", "c", "a", "d", "b", "e", "a"]:
            cache.get(key, size=100)
            if monitor.check().label != "normal":
                run.reached("pressure")
            run.clock.sleep(1.0)

    return body


CACHE = {"families": [HOST], "must_fire": ["host.memory"],
         "checks": [lambda h: check_eviction(h, source="models", capacity_bytes=1000,
                                             pressure_level="warning")]}


@pytest.mark.usefixtures("no_gc_per_eviction")
def test_a_cache_evicting_the_most_recently_used_is_caught() -> None:
    _, mutant, _ = cache_classes()
    failure = catch(cache_body(mutant), **CACHE)
    assert len(failure.plan) == 1
    assert "was less recently used" in str(failure)


@pytest.mark.usefixtures("no_gc_per_eviction")
def test_the_real_cache_passes_500_plans() -> None:
    correct, _, _ = cache_classes()
    survive(cache_body(correct), sometimes=["pressure"], **CACHE)


# -- chroma transaction -----------------------------------------------------------------
VEC = [0.5] * 4
BASE = {f"rec-{i}": ([float(i)] * 4, f"doc {i}") for i in range(4)}
TX = failpoints({"tx.write": [Action.raise_(ConnectionError("lost"))]})


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Any:
    chromadb = pytest.importorskip("chromadb", reason="the transaction mutant needs chromadb")
    path: Path = tmp_path_factory.mktemp("chroma")
    client = chromadb.PersistentClient(path=str(path))
    return client.create_collection("docs", embedding_function=None)


def reset(collection: Any) -> None:
    extra = [i for i in collection.get()["ids"] if i not in BASE]
    if extra:
        collection.delete(ids=extra)
    collection.upsert(ids=list(BASE), embeddings=[v for v, _ in BASE.values()],
                      documents=[d for _, d in BASE.values()])


def transaction_classes() -> tuple[type[Any], type[Any]]:
    from pytest_resilience.chroma._transaction import ChromaTransaction

    class ForgetsDeletes(ChromaTransaction):
        """Mutant: deletes skip the checkpoint, so rollback cannot bring them back."""

        def delete(self, ids: Sequence[str] | str) -> None:
            if self.state == "new":
                self.begin()
            self.collection.delete(ids=[ids] if isinstance(ids, str) else list(ids))

    return ChromaTransaction, ForgetsDeletes


def transaction_body(tx_cls: type[Any], collection: Any) -> Callable[[ChaosRun], None]:
    def body(run: ChaosRun) -> None:
        reset(collection)
        before = snapshot(collection)
        steps: list[Callable[[Any], None]] = [
            lambda tx: tx.add(["new-1"], [VEC], documents=["new"]),
            lambda tx: tx.delete(["rec-1"]),
            lambda tx: tx.update(["rec-2"], [[0.25] * 4], documents=["changed"]),
            lambda tx: tx.delete(["rec-3"]),
        ]
        try:
            with tx_cls(collection, clock=run.clock) as tx:
                for step in steps:
                    step(tx)
                    faults.failpoint("tx.write")
        except ConnectionError:
            run.reached("rolled back")
            run.check(check_rollback(before, snapshot(collection), history=run.history))

    return body


pytestmark = pytest.mark.filterwarnings(
    "ignore:legacy embedding function config:DeprecationWarning")


def test_a_transaction_forgetting_deletes_is_caught(collection: Any) -> None:
    _, mutant = transaction_classes()
    failure = catch(transaction_body(mutant, collection), families=[TX],
                    must_fire=["tx.write"])
    assert len(failure.plan) == 1
    assert "record(s) gone ('rec-1'" in str(failure)


def test_the_real_transaction_passes_500_plans(collection: Any) -> None:
    correct, _ = transaction_classes()
    survive(transaction_body(correct, collection), families=[TX], must_fire=["tx.write"],
            sometimes=["rolled back"])
