"""The retry checker on scripted histories and on the real ``Retry``."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resilience._backoff import Backoff
from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import RetryError
from pytest_resilience._events import History, recording
from pytest_resilience._retry import Retry
from pytest_resilience.checks import CheckFailed, check_retry

BACKOFF = Backoff.exponential(base=0.1, factor=2.0, max=1.0)


def scripted(delays: list[float], *, waits: list[float] | None = None,
             errors: list[str] | None = None) -> History:
    """A call failing len(delays) times then succeeding; waits default to the delays."""
    history = History()
    t = 0.0
    waits = delays if waits is None else waits
    errors = errors or ["ConnectionError('x')"] * len(delays)
    for n, (delay, wait) in enumerate(zip(delays, waits, strict=True), 1):
        history.append("retry.attempt", "r", time=t,
                       attrs={"attempt": n, "outcome": "error", "error": errors[n - 1],
                              "elapsed": t})
        history.append("retry.sleep", "r", time=t, attrs={"attempt": n, "delay": delay})
        t += wait
    history.append("retry.attempt", "r", time=t,
                   attrs={"attempt": len(delays) + 1, "outcome": "ok", "error": None,
                          "elapsed": t})
    return history


def test_a_well_behaved_history_passes() -> None:
    verdict = check_retry(scripted([0.1, 0.2, 0.4]), attempts=4, backoff=BACKOFF,
                          jitter="none")
    assert verdict.ok
    assert bool(verdict)
    assert "1 retried call(s)" in verdict.explanation


def test_too_many_attempts_names_the_extra_attempt() -> None:
    verdict = check_retry(scripted([0.1, 0.2, 0.4]), attempts=3)
    assert not verdict.ok
    assert "made 4 attempts, more than the limit of 3" in verdict.explanation
    assert [e.attrs["attempt"] for e in verdict.events] == [4]
    assert "#6 retry.attempt[r]" in verdict.explanation


def test_a_delay_outside_the_envelope_is_named() -> None:
    verdict = check_retry(scripted([0.1, 0.0]), backoff=BACKOFF, jitter="equal")
    assert not verdict.ok
    assert "slept 0s before retry 2, outside the equal-jitter envelope [0.1, 0.2]s" in (
        verdict.explanation)
    assert verdict.events[0].kind == "retry.sleep"


def test_an_attempt_that_did_not_wait_is_caught() -> None:
    verdict = check_retry(scripted([0.1, 0.2], waits=[0.1, 0.0]), backoff=BACKOFF,
                          jitter="none")
    assert not verdict.ok
    assert "announcing a 0.2s sleep, so it did not wait" in verdict.explanation


def test_retry_without_a_sleep_event_is_caught() -> None:
    history = History()
    history.append("retry.attempt", "r", time=0.0,
                   attrs={"attempt": 1, "outcome": "error", "error": "E()", "elapsed": 0.0})
    history.append("retry.attempt", "r", time=0.0,
                   attrs={"attempt": 2, "outcome": "ok", "error": None, "elapsed": 0.0})
    verdict = check_retry(history, backoff=BACKOFF)
    assert "retried without sleeping for the backoff" in verdict.explanation


def test_a_non_retryable_error_must_end_the_call() -> None:
    history = scripted([0.1], errors=["ValueError('bad')"])
    verdict = check_retry(history, not_retryable=[ValueError])
    assert not verdict.ok
    assert "was retried after a non-retryable error ValueError('bad')" in verdict.explanation
    assert check_retry(history, not_retryable=["KeyError"]).ok


def test_a_wait_past_the_deadline_is_caught() -> None:
    verdict = check_retry(scripted([0.1, 0.2, 0.4]), deadline=0.5)
    assert not verdict.ok
    assert "past the 0.5s deadline" in verdict.explanation


def test_assert_ok_raises_check_failed_with_the_verdict() -> None:
    verdict = check_retry(scripted([0.1, 0.2, 0.4]), attempts=2)
    with pytest.raises(CheckFailed) as info:
        verdict.assert_ok()
    assert info.value.verdict is verdict
    assert str(info.value).startswith("retry: VIOLATED: Retried call 1 of 'r'")


def test_bad_jitter_is_refused() -> None:
    with pytest.raises(ValueError) as info:
        check_retry(History(), jitter="half")
    assert str(info.value).startswith("jitter='half' is not a jitter mode.")


@settings(max_examples=30, deadline=None)
@given(jitter=st.sampled_from(["full", "equal", "none"]), seed=st.integers(0, 2**16),
       failures=st.integers(0, 5), deadline=st.sampled_from([None, 0.5, 2.0]))
def test_the_real_retry_always_passes(jitter: str, seed: int, failures: int,
                                      deadline: float | None) -> None:
    clock = VirtualClock()
    policy = Retry(attempts=4, backoff=BACKOFF, jitter=jitter, seed=seed, clock=clock,
                   deadline=deadline)
    left = [failures]

    def flaky() -> int:
        if left[0]:
            left[0] -= 1
            raise ConnectionError("down")
        return 1

    with recording() as history, contextlib.suppress(RetryError):  # gave up: still judged
        policy.call(flaky)
    verdict = check_retry(history, attempts=4, backoff=BACKOFF, jitter=jitter,
                          deadline=deadline)
    assert verdict.ok, verdict.explanation


def test_full_jitter_without_backoff_is_caught_from_a_single_sleep() -> None:
    verdict = check_retry(scripted([0.0]), backoff=BACKOFF, jitter="full")
    assert not verdict.ok
    assert verdict.explanation.startswith(
        "Retried calls of 'r' slept 1 time(s) with full jitter, and the longest sleep was 0 "
        "of its backoff delay. Full jitter draws each delay uniformly from [0, delay], which "
        "stays that short with probability 0, below significance=1e-06: the backoff is "
        "missing or shorter than configured. Events: #1 retry.sleep[r]@0s(attempt=1, "
        "delay=0).")
    assert [e.kind for e in verdict.events] == ["retry.sleep"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=7, max_size=12))
def test_a_backoff_ten_times_too_short_is_caught_over_seven_sleeps(
        draws: list[float]) -> None:
    delays = [0.1 * u * BACKOFF.delay(n) for n, u in enumerate(draws, 1)]
    verdict = check_retry(scripted(delays), backoff=BACKOFF, jitter="full")
    assert not verdict.ok  # all ratios <= 0.1: chance <= 0.1**7 < 1e-6
    assert "with full jitter" in verdict.explanation


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.01, 1), min_size=1, max_size=12))
def test_plausible_full_jitter_delays_pass(draws: list[float]) -> None:
    delays = [u * BACKOFF.delay(n) for n, u in enumerate(draws, 1)]
    assert check_retry(scripted(delays), backoff=BACKOFF, jitter="full").ok == (
        max(draws) ** len(draws) >= 1e-6)


def test_a_deadline_caps_the_delays_full_jitter_may_draw() -> None:
    # 0.9 s into a 1 s deadline a retry can only sleep below 0.1 s, whatever its backoff.
    history = History()
    history.append("retry.attempt", "r", time=0.9,
                   attrs={"attempt": 1, "outcome": "error", "error": "E()", "elapsed": 0.9})
    history.append("retry.sleep", "r", time=0.9, attrs={"attempt": 1, "delay": 1e-5})
    history.append("retry.attempt", "r", time=0.9 + 1e-5,
                   attrs={"attempt": 2, "outcome": "ok", "error": None, "elapsed": 0.9})
    big = Backoff.constant(1e3)
    assert check_retry(history, backoff=big, jitter="full", deadline=1.0).ok
    assert not check_retry(history, backoff=big, jitter="full").ok


def test_significance_must_be_a_probability() -> None:
    with pytest.raises(ValueError) as info:
        check_retry(History(), significance=0)
    assert str(info.value) == ("significance=0 is not a probability. Pass a number in (0, 1), "
                               "such as 1e-6.")
