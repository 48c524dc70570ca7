"""The breaker against a small reference model, driven by Hypothesis stateful testing."""

from __future__ import annotations

import uuid
from collections import deque
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from pytest_resilience import RedisStorage, Storage
from pytest_resilience._breaker import BreakerState, CircuitBreaker
from pytest_resilience._clock import VirtualClock
from pytest_resilience._errors import CircuitOpenError


class Model:
    """The specification, written as plainly as possible."""

    def __init__(  # noqa: PLR0917
        self, threshold: int, rate: float, size: float, minimum: int, timeout: float,
        trials: int, kind: str,
    ) -> None:
        self.threshold, self.rate, self.size, self.minimum = threshold, rate, size, minimum
        self.timeout, self.trials = timeout, trials
        self.state = "closed"
        self.now = 0.0
        self.opened_at = 0.0
        self.consecutive = 0
        self.kind = kind
        self.window: deque[tuple[float, bool]] = deque(
            maxlen=int(size) if kind == "count" else None)
        self.successes = 0

    def _open(self) -> None:
        self.state, self.opened_at = "open", self.now

    def _close(self) -> None:
        self.state, self.consecutive, self.successes = "closed", 0, 0
        self.window.clear()

    def current(self) -> str:
        if self.state == "open" and self.now >= self.opened_at + self.timeout:
            self.state, self.successes = "half_open", 0
        return self.state

    def call(self, failed: bool) -> str:
        """'rejected', or the outcome recorded."""
        if self.current() == "open":
            return "rejected"
        if self.state == "closed":
            self.consecutive = self.consecutive + 1 if failed else 0
            self.window.append((self.now, failed))
            if self.kind == "time":
                self.window = deque(e for e in self.window if e[0] > self.now - self.size)
            failures = sum(f for _, f in self.window)
            if self.consecutive >= self.threshold or (
                len(self.window) >= self.minimum and failures >= self.rate * len(self.window)
            ):
                self._open()
        elif failed:
            self._open()
        else:
            self.successes += 1
            if self.successes >= self.trials:
                self._close()
        return "error" if failed else "ok"


class BreakerMachine(RuleBasedStateMachine):
    storage: Storage | None = None  # where the breaker keeps its state

    @initialize(threshold=st.integers(1, 6), rate=st.sampled_from([0.25, 0.5, 0.75, 1.0]),
                size=st.integers(2, 8), timeout=st.sampled_from([1.0, 2.5]),
                trials=st.integers(1, 3), kind=st.sampled_from(["count", "time"]),
                data=st.data())
    def setup(  # noqa: PLR0917
        self, threshold: int, rate: float, size: int, timeout: float, trials: int, kind: str,
        data: st.DataObject,
    ) -> None:
        minimum = data.draw(st.integers(1, size))
        self.clock = VirtualClock()
        self.breaker = CircuitBreaker(
            failure_threshold=threshold, failure_rate=rate, window_size=size,
            minimum_calls=minimum, recovery_timeout=timeout, half_open_max_calls=trials,
            window=kind, clock=self.clock, storage=self.storage, name=uuid.uuid4().hex,
        )
        self.model = Model(threshold, rate, size, minimum, timeout, trials, kind)

    def _call(self, failed: bool) -> None:
        expected = self.model.call(failed)

        def fn() -> str:
            if failed:
                raise ConnectionError("x")
            return "ok"

        try:
            self.breaker.call(fn)
            got = "ok"
        except ConnectionError:
            got = "error"
        except CircuitOpenError:
            got = "rejected"
        assert got == expected

    @rule()
    def succeed(self) -> None:
        self._call(False)

    @rule()
    def failure(self) -> None:
        self._call(True)

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0]))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.model.now += seconds

    @invariant()
    def same_state(self) -> None:
        if hasattr(self, "breaker"):
            assert self.breaker.state.value == self.model.current()
            assert isinstance(self.breaker.state, BreakerState)


BreakerMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40,
                                            deadline=None)
TestBreakerMatchesReferenceModel = BreakerMachine.TestCase


def test_breaker_on_redis_matches_the_reference_model(redis_server: Any) -> None:
    """The Lua scripts against the same model, on a real Redis."""
    redis_server.flush()
    storage = RedisStorage(redis_server.url, time="clock")

    class OnRedis(BreakerMachine):
        pass

    OnRedis.storage = storage
    try:
        run_state_machine_as_test(OnRedis, settings=settings(
            max_examples=40, stateful_step_count=40, deadline=None))
    finally:
        storage.close()
