"""check_retry on plain code: attempts are watched calls, waits are observed sleeps, and a
give-up must raise (the gap: a retry that swallowed the last error used to pass)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import pytest

from pytest_resilience import Backoff, History, VirtualClock, recording
from pytest_resilience.checks import check_retry
from pytest_resilience.observe import watch_calls, watch_sleeps


class Upstream:
    def __init__(self, failures: int) -> None:
        self.failures = failures

    def get(self) -> str:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("reset")
        return "data"


def retrying(*, swallow: bool = False, fallback: object = None, attempts: int = 3,
             base: float = 0.1) -> Callable[[Callable[[], str]], object]:
    def fetch(get: Callable[[], str]) -> object:
        for attempt in range(attempts):
            try:
                return get()
            except ConnectionError:
                if attempt == attempts - 1 and not swallow:
                    raise
                if attempt < attempts - 1:
                    time.sleep(base * 2**attempt)
        return fallback

    return fetch


def observed(fetch: Callable[[Callable[[], str]], object], failures: int,
             repeat: int = 1) -> History:
    clock = VirtualClock()
    upstream = Upstream(failures)
    with recording(History(clock=clock)) as history, watch_sleeps(clock), \
            watch_calls(upstream, "get", name="upstream"), \
            watch_calls(fetch, name="fetch") as watched:
        for _ in range(repeat):
            with contextlib.suppress(ConnectionError):
                watched(upstream.get)
    return history


def test_a_retry_that_backs_off_and_raises_passes() -> None:
    history = observed(retrying(), failures=99, repeat=2)
    verdict = check_retry(history, attempts=3, backoff=Backoff.exponential(), jitter="none")
    assert verdict.ok, verdict.explanation
    assert verdict.explanation.startswith("2 retried call(s) from ['upstream'] kept the "
                                          "attempt limit")


def test_swallowing_the_last_error_is_caught() -> None:
    """Regression (issue 16): this history passed check_retry before."""
    history = observed(retrying(swallow=True), failures=99)
    verdict = check_retry(history, attempts=3)
    assert not verdict.ok
    assert "Retried call 1 of 'upstream' (started at 0s) gave up after 3 attempt(s) and " \
        "retrying.<locals>.fetch returned None instead of raising: the last error " \
        "(ConnectionError) was swallowed. Raise it, or declare fallback= if returning " \
        "that value is intended. Events: #" in verdict.explanation
    assert [e.kind for e in verdict.events] == ["call.end", "call.end"]


def test_a_declared_fallback_value_passes() -> None:
    history = observed(retrying(swallow=True, fallback=[]), failures=99)
    assert check_retry(history, fallback=[]).ok
    verdict = check_retry(history, fallback="cached")
    assert "(the declared fallback is 'cached')" in verdict.explanation
    assert check_retry(observed(retrying(swallow=True), failures=99), fallback=None).ok


def test_no_backoff_and_short_waits_are_caught() -> None:
    history = observed(retrying(base=0.0), failures=1)
    verdict = check_retry(history, backoff=Backoff.exponential(), jitter="none")
    assert "retried without sleeping for the backoff" in verdict.explanation
    short = check_retry(observed(retrying(base=0.01), failures=2),
                        backoff=Backoff.exponential(), jitter="full", significance=0.05)
    assert "slept 2 time(s) with full jitter, and the longest sleep was 0.1 of its backoff " \
        "delay" in short.explanation


def test_too_many_attempts_and_a_non_retryable_error() -> None:
    history = observed(retrying(attempts=5), failures=99)
    verdict = check_retry(history, attempts=3)
    assert "made 5 attempts, more than the limit of 3" in verdict.explanation
    blocked = check_retry(history, not_retryable=[ConnectionError])
    assert "was retried after a non-retryable error ConnectionError" in blocked.explanation


def test_without_the_retrying_function_a_success_ends_a_retried_call() -> None:
    clock = VirtualClock()
    upstream = Upstream(failures=2)
    fetch = retrying(attempts=4)
    with recording(History(clock=clock)) as history, watch_sleeps(clock), \
            watch_calls(upstream, "get"):
        fetch(upstream.get)
        upstream.failures = 1
        fetch(upstream.get)
    verdict = check_retry(history, backoff=Backoff.exponential(), jitter="none", attempts=3)
    assert verdict.ok, verdict.explanation
    assert "2 retried call(s) from ['Upstream.get']" in verdict.explanation


@pytest.mark.parametrize("waits", [[0.1, 0.05, 0.05]])
def test_several_sleeps_before_one_retry_add_up(waits: list[float]) -> None:
    clock = VirtualClock()
    upstream = Upstream(failures=1)

    def fetch(get: Callable[[], str]) -> str:
        try:
            return get()
        except ConnectionError:
            for wait in waits:
                time.sleep(wait)
            return get()

    with recording(History(clock=clock)) as history, watch_sleeps(clock), \
            watch_calls(upstream, "get"):
        fetch(upstream.get)
    verdict = check_retry(history, backoff=Backoff.exponential(base=0.2), jitter="none")
    assert verdict.ok, verdict.explanation
