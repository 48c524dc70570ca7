"""Retry overhead side by side: success path and fail-fail-succeed.

Peers sleep as little as each allows (a no-op ``sleep=`` hook, or ``time.sleep`` patched
out); ours fails-fails-succeeds on a ``VirtualClock`` with its default backoff and full
jitter, so its waits are real (virtual) waits, and once more with no wait at all.
Peers: tenacity, stamina, backoff and pyresilience (the fastest of them).

Run: ``pytest benchmarks/test_bench_retry.py --benchmark-only``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_resilience._backoff import Backoff
from pytest_resilience._clock import VirtualClock
from pytest_resilience._retry import Retry

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def target() -> int:
    return 1


def flaky_factory() -> Callable[[], int]:
    """A function failing twice then succeeding, once per 3 calls, forever."""
    state = [0]

    def flaky() -> int:
        state[0] += 1
        if state[0] % 3:
            raise ConnectionError("down")
        return 1

    return flaky


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Peers without a sleep hook get ``time.sleep`` patched out (as in the research)."""
    monkeypatch.setattr("time.sleep", lambda s: None)


# -- success path -------------------------------------------------------------------------
@pytest.mark.benchmark(group="retry-success")
def test_direct_call(benchmark: Any) -> None:
    assert benchmark(target) == 1


@pytest.mark.benchmark(group="retry-success")
def test_ours_success(benchmark: Any) -> None:
    assert benchmark(Retry(attempts=3)(target)) == 1


@pytest.mark.benchmark(group="retry-success")
def test_tenacity_success(benchmark: Any) -> None:
    tenacity = pytest.importorskip("tenacity")
    fn = tenacity.retry(stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_exponential())(
        target)
    assert benchmark(fn) == 1


@pytest.mark.benchmark(group="retry-success")
def test_stamina_success(benchmark: Any) -> None:
    stamina = pytest.importorskip("stamina")
    assert benchmark(stamina.retry(on=ConnectionError, attempts=3)(target)) == 1


@pytest.mark.benchmark(group="retry-success")
def test_backoff_success(benchmark: Any) -> None:
    backoff = pytest.importorskip("backoff")
    fn = backoff.on_exception(backoff.expo, ConnectionError, max_tries=3, logger=None)(target)
    assert benchmark(fn) == 1


def pyresilience_retry(fn: Callable[..., Any]) -> Callable[..., Any]:
    pyresilience = pytest.importorskip("pyresilience")
    config = pyresilience.RetryConfig(max_attempts=3, delay=0.1, max_delay=10.0)
    return pyresilience.resilient(retry=config)(fn)  # type: ignore[no-any-return]


@pytest.mark.benchmark(group="retry-success")
def test_pyresilience_success(benchmark: Any) -> None:
    assert benchmark(pyresilience_retry(target)) == 1


# -- async success path -----------------------------------------------------------------
async def atarget() -> int:
    return 1


@pytest.mark.benchmark(group="retry-async-success-x1000")
def test_ours_async_success(benchmark: Any, run_many: Any) -> None:
    benchmark(run_many(Retry(attempts=3)(atarget)))


@pytest.mark.benchmark(group="retry-async-success-x1000")
def test_tenacity_async_success(benchmark: Any, run_many: Any) -> None:
    tenacity = pytest.importorskip("tenacity")
    benchmark(run_many(tenacity.retry(stop=tenacity.stop_after_attempt(3))(atarget)))


@pytest.mark.benchmark(group="retry-async-success-x1000")
def test_pyresilience_async_success(benchmark: Any, run_many: Any) -> None:
    benchmark(run_many(pyresilience_retry(atarget)))


# -- fail, fail, succeed ------------------------------------------------------------------
@pytest.mark.benchmark(group="retry-fail-fail-succeed")
def test_ours_fail_fail_succeed_virtual_clock(benchmark: Any) -> None:
    """Default backoff (0.1 s x 2**n, full jitter): two virtual waits per call."""
    clock = VirtualClock()
    fn = Retry(attempts=3, clock=clock)(flaky_factory())
    assert benchmark(fn) == 1
    assert clock.monotonic() > 0


@pytest.mark.benchmark(group="retry-fail-fail-succeed")
def test_ours_fail_fail_succeed(benchmark: Any) -> None:
    fn = Retry(attempts=3, backoff=Backoff.constant(0))(flaky_factory())
    assert benchmark(fn) == 1


@pytest.mark.benchmark(group="retry-fail-fail-succeed")
@pytest.mark.usefixtures("no_sleep")
def test_pyresilience_fail_fail_succeed(benchmark: Any) -> None:
    assert benchmark(pyresilience_retry(flaky_factory())) == 1


@pytest.mark.benchmark(group="retry-fail-fail-succeed")
def test_tenacity_fail_fail_succeed(benchmark: Any) -> None:
    tenacity = pytest.importorskip("tenacity")
    fn = tenacity.retry(stop=tenacity.stop_after_attempt(3), sleep=lambda s: None)(
        flaky_factory())
    assert benchmark(fn) == 1


@pytest.mark.benchmark(group="retry-fail-fail-succeed")
@pytest.mark.usefixtures("no_sleep")
def test_stamina_fail_fail_succeed(benchmark: Any) -> None:
    stamina = pytest.importorskip("stamina")
    stamina.instrumentation.set_on_retry_hooks([])
    stamina.set_testing(True, attempts=3)
    try:
        assert benchmark(stamina.retry(on=ConnectionError, attempts=3)(flaky_factory())) == 1
    finally:
        stamina.set_testing(False)
        stamina.instrumentation.set_on_retry_hooks(None)


@pytest.mark.benchmark(group="retry-fail-fail-succeed")
@pytest.mark.usefixtures("no_sleep")
def test_backoff_fail_fail_succeed(benchmark: Any) -> None:
    backoff = pytest.importorskip("backoff")
    fn = backoff.on_exception(backoff.constant, ConnectionError, max_tries=3, interval=0,
                              jitter=None, logger=None)(flaky_factory())
    assert benchmark(fn) == 1


@pytest.mark.benchmark(group="retry-fail-fail-succeed-interleaved")
@pytest.mark.usefixtures("no_sleep")
def test_fail_fail_succeed_interleaved(interleaved: Any) -> None:
    """Ours on a VirtualClock and the two fastest peers, timed in the same rounds."""
    backoff = pytest.importorskip("backoff")
    interleaved({
        "ours": Retry(attempts=3, clock=VirtualClock())(flaky_factory()),
        "pyresilience": pyresilience_retry(flaky_factory()),
        "backoff": backoff.on_exception(backoff.constant, ConnectionError, max_tries=3,
                                        interval=0, jitter=None, logger=None)(flaky_factory()),
    }, calls=500)
