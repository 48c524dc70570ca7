"""Retry: attempts, backoff waits on a VirtualClock, predicates, reraise, deadline, budget."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from pytest_resilience import Storage
from pytest_resilience._backoff import Backoff
from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import RetryError
from pytest_resilience._events import History, recording
from pytest_resilience._retry import Retry, RetryBudget, RetryState, retry


class Flaky:
    """Fails ``failures`` times with ``exc``, then returns ``value``."""

    def __init__(
        self, failures: int, exc: type[BaseException] = ConnectionError, value: Any = "ok"
    ) -> None:
        self.failures, self.exc, self.value, self.calls = failures, exc, value, 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"boom {self.calls}")
        return self.value


class CountingClock(VirtualClock):
    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().asleep(seconds)


def run_both(policy: Retry, fn: Callable[[], Any], mode: str) -> Any:
    if mode == "sync":
        return policy.call(fn)

    async def coro() -> Any:
        return fn()

    return asyncio.run(policy.acall(coro))


MODES = ["sync", "async"]


@pytest.mark.parametrize("mode", MODES)
def test_fail_fail_succeed_waits_the_backoff_on_the_clock(mode: str) -> None:
    clock = CountingClock()
    policy = Retry(attempts=3, backoff=Backoff.exponential(base=1.0, factor=2.0, max=10.0),
                   jitter="none", clock=clock)
    flaky = Flaky(2)
    assert run_both(policy, flaky, mode) == "ok"
    assert flaky.calls == 3
    assert clock.sleeps == [1.0, 2.0]
    assert clock.monotonic() == 3.0


@pytest.mark.parametrize("mode", MODES)
def test_exhausted_raises_retry_error_with_every_attempt(mode: str) -> None:
    clock = VirtualClock()
    policy = Retry(attempts=3, backoff=Backoff.constant(0.5), jitter="none", clock=clock,
                   name="svc")
    with pytest.raises(RetryError) as info:
        run_both(policy, Flaky(5), mode)
    err = info.value
    assert [a.number for a in err.attempts] == [1, 2, 3]
    assert [str(a.exception) for a in err.attempts] == ["boom 1", "boom 2", "boom 3"]
    assert [a.started for a in err.attempts] == [0.0, 0.5, 1.0]
    assert isinstance(err.last_exception, ConnectionError)
    assert isinstance(err.__cause__, ConnectionError)
    assert str(err) == "svc: gave up after 3 attempts (attempts); last: ConnectionError('boom 3')"


@pytest.mark.parametrize("mode", MODES)
def test_reraise_raises_the_original_exception(mode: str) -> None:
    policy = Retry(attempts=2, reraise=True, backoff=Backoff.constant(0), clock=VirtualClock())
    with pytest.raises(ConnectionError, match="boom 2"):
        run_both(policy, Flaky(5), mode)


@pytest.mark.parametrize("mode", MODES)
def test_zero_delay_never_sleeps(mode: str) -> None:
    clock = CountingClock()
    policy = Retry(attempts=4, backoff=Backoff.constant(0), clock=clock)
    assert run_both(policy, Flaky(3), mode) == "ok"
    assert clock.sleeps == []


@pytest.mark.parametrize("mode", MODES)
def test_not_retryable_exception_propagates_after_one_attempt(mode: str) -> None:
    policy = Retry(attempts=5, retry_on=(ConnectionError,), clock=VirtualClock())
    flaky = Flaky(3, exc=KeyError)
    with recording() as history, pytest.raises(KeyError):
        run_both(policy, flaky, mode)
    assert flaky.calls == 1
    assert history.select("retry.giveup")[0].attrs == {"attempts": 1, "reason": "not_retryable"}


def test_retry_on_predicate_and_single_type() -> None:
    clock = VirtualClock()
    policy = Retry(attempts=3, retry_on=lambda exc: "retry" in str(exc), clock=clock)
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("please retry")
        if len(calls) == 2:
            raise ValueError("fatal")
        return "no"

    with pytest.raises(ValueError, match="fatal"):
        policy.call(fn)
    assert len(calls) == 2
    assert Retry(retry_on=OSError, clock=clock).call(Flaky(2, exc=OSError)) == "ok"


@pytest.mark.parametrize("mode", MODES)
def test_retry_on_result_predicate(mode: str) -> None:
    values = iter([None, None, 7])
    policy = Retry(attempts=3, retry_if_result=lambda r: r is None, clock=VirtualClock())
    assert run_both(policy, lambda: next(values), mode) == 7
    always_none = Retry(attempts=2, retry_if_result=lambda r: r is None, clock=VirtualClock())
    with pytest.raises(RetryError, match="result rejected by retry_if_result") as info:
        run_both(always_none, lambda: None, mode)
    assert len(info.value.attempts) == 2


@pytest.mark.parametrize("mode", MODES)
def test_deadline_gives_up_before_a_wait_that_would_pass_it(mode: str) -> None:
    clock = VirtualClock()
    policy = Retry(attempts=10, backoff=Backoff.constant(2.0), jitter="none", deadline=5.0,
                   clock=clock)
    with recording() as history, pytest.raises(RetryError, match=r"\(deadline\)"):
        run_both(policy, Flaky(100), mode)
    assert clock.monotonic() == 4.0  # waits at 0->2->4; the third wait would end at 6 > 5
    assert history.select("retry.giveup")[0].attrs["reason"] == "deadline"


def test_on_retry_receives_state_before_each_wait() -> None:
    seen: list[RetryState] = []
    policy = Retry(attempts=3, backoff=Backoff.linear(base=1.0, step=1.0, max=5.0),
                   jitter="none", on_retry=seen.append, clock=VirtualClock(), name="db")
    policy.call(Flaky(2))
    assert [(s.name, s.attempt, s.delay) for s in seen] == [("db", 1, 1.0), ("db", 2, 2.0)]
    assert isinstance(seen[0].exception, ConnectionError)


def test_events_follow_the_design_table() -> None:
    history = History()
    policy = Retry(attempts=3, backoff=Backoff.constant(1.0), jitter="none",
                   clock=VirtualClock(), name="api")
    with recording(history):
        policy.call(Flaky(1))
    assert history.kinds() == ["retry.attempt", "retry.sleep", "retry.attempt"]
    first, sleep, last = history
    assert first.attrs == {"attempt": 1, "outcome": "error", "error": "ConnectionError('boom 1')",
                           "elapsed": 0.0}
    assert sleep.attrs == {"attempt": 1, "delay": 1.0}
    assert last.attrs == {"attempt": 2, "outcome": "ok", "error": None, "elapsed": 1.0}
    assert {e.source for e in history} == {"api"}


def test_success_emits_one_ok_attempt_when_recorded() -> None:
    with recording() as history:
        assert Retry(clock=VirtualClock()).call(lambda: 3) == 3
    assert [(e.kind, e.attrs["outcome"]) for e in history] == [("retry.attempt", "ok")]


def test_decorator_forms_keep_metadata_and_work_sync_and_async() -> None:
    clock = VirtualClock()
    flaky = Flaky(1)

    @retry(attempts=2, clock=clock)
    def fetch() -> str:
        """Docs."""
        return str(flaky())

    @retry
    def plain() -> int:
        return 1

    counter = Flaky(2)

    @retry(attempts=3, clock=clock)
    async def afetch() -> str:
        return str(counter())

    assert fetch() == "ok"
    assert fetch.__doc__ == "Docs."
    assert fetch.__name__ == "fetch"
    assert plain() == 1
    assert asyncio.run(afetch()) == "ok"
    assert counter.calls == 3


def test_generators_are_refused_with_a_clear_error() -> None:
    def gen() -> Any:
        yield 1

    async def agen() -> Any:
        yield 1

    policy = Retry(clock=VirtualClock())
    with pytest.raises(TypeError, match="is a generator function: Retry cannot re-run"):
        policy(gen)
    with pytest.raises(TypeError, match="is a generator function"):
        policy(agen)
    with pytest.raises(TypeError, match="returned a generator or coroutine"):
        policy.call(gen)

    async def coro() -> int:
        return 1

    with pytest.raises(TypeError, match=r"use 'await policy.acall\(fn\)'"):
        policy.call(coro)


def test_retry_budget_caps_extra_calls_across_a_window(storage: Storage) -> None:
    clock = VirtualClock()
    budget = RetryBudget(ratio=0.1, window=10.0, min_retries=0, clock=clock, storage=storage)
    policy = Retry(attempts=3, backoff=Backoff.constant(0), budget=budget, clock=clock)
    for _ in range(20):
        policy.call(lambda: 1)
    assert budget.available == 2
    flaky = Flaky(2)
    assert policy.call(flaky) == "ok"  # 21 calls -> 2.1 allowed retries: both fit
    with recording() as history, pytest.raises(RetryError, match=r"\(budget\)"):
        policy.call(Flaky(5))
    assert history.select("retry.giveup")[0].attrs == {"attempts": 1, "reason": "budget"}
    clock.advance(11.0)  # the window forgets old calls and retries
    assert budget.available == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempts": 0}, "attempts=0 is not a valid number of attempts. Pass an integer >= 1"),
        ({"attempts": -2}, "attempts=-2 is not a valid number of attempts."),
        ({"jitter": "some"}, "jitter='some' is not a jitter mode. Pass one of full, equal, "
                             "decorrelated, none."),
        ({"deadline": 0}, "deadline=0 is not a valid number of seconds. Pass seconds > 0, "
                          "or None."),
    ],
)
def test_bad_configuration_raises_value_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Retry(**kwargs)
    assert str(info.value).startswith(message)


def test_bad_retry_on_and_backoff_raise_type_error() -> None:
    with pytest.raises(TypeError, match="retry_on=42 is not an exception type"):
        Retry(retry_on=42)
    with pytest.raises(TypeError, match=r"backoff=1\.0 is not a Backoff"):
        Retry(backoff=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ratio=-1 is not a valid retry ratio"):
        RetryBudget(ratio=-1)
