"""Adapters that write third-party components' decisions as this project's events, so the
checkers judge them too: tenacity (``before_sleep`` / ``after`` hooks) and pybreaker (a
listener, which also reports its transitions). A cachetools cache needs no adapter:
``pytest_resilience.observe.watch_cache`` reads any mapping-like cache, cachetools' too.

Nothing here imports the third-party library until it is used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pytest_resilience import _validate
from pytest_resilience._clock import Clock
from pytest_resilience._events import History, emit
from pytest_resilience.kinds import (
    BREAKER_CALL,
    BREAKER_REJECTED,
    BREAKER_TRANSITION,
    RETRY_ATTEMPT,
    RETRY_SLEEP,
)

__all__ = ["PybreakerRecorder", "TenacityRecorder"]

T = TypeVar("T")


class TenacityRecorder:
    """tenacity hooks that emit ``retry.attempt`` (failed attempts) and ``retry.sleep``.

    ``tenacity.Retrying(**recorder.hooks(), ...)`` also makes tenacity sleep on the
    recorder's clock. tenacity calls ``after`` only for attempts it is about to judge
    retryable, so successful attempts are not recorded.
    """

    def __init__(self, *, name: str = "tenacity", clock: Clock | None = None,
                 history: History | None = None) -> None:
        self.name = name
        self.clock: Clock = _validate.clock(clock)
        self.history = _validate.history(history)

    def after(self, retry_state: Any) -> None:
        """tenacity ``after`` hook: one failed attempt."""
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        error = repr(exc) if exc is not None else (
            f"result {outcome.result()!r}" if outcome is not None else None)
        emit(RETRY_ATTEMPT, self.name, self.clock, history=self.history,
             attempt=retry_state.attempt_number, outcome="error", error=error,
             elapsed=float(retry_state.seconds_since_start or 0.0))

    def before_sleep(self, retry_state: Any) -> None:
        """tenacity ``before_sleep`` hook: the wait before the next attempt."""
        delay = float(retry_state.next_action.sleep) if retry_state.next_action else 0.0
        emit(RETRY_SLEEP, self.name, self.clock, history=self.history,
             attempt=retry_state.attempt_number, delay=delay)

    def hooks(self) -> dict[str, Callable[..., Any]]:
        """Keyword arguments for ``tenacity.retry``/``Retrying``: the hooks and ``sleep``."""
        return {"after": self.after, "before_sleep": self.before_sleep,
                "sleep": self.clock.sleep}


def _pybreaker_state(state: Any) -> str:
    name = str(getattr(state, "name", state))
    return "half_open" if name == "half-open" else name


class PybreakerRecorder:
    """A pybreaker listener that emits ``breaker.transition`` and ``breaker.call``.

    pybreaker rejects calls without telling listeners: run calls through ``call`` to
    record ``breaker.rejected`` too. Build with ``PybreakerRecorder.listener(...)``.
    """

    def __init__(self, *, clock: Clock | None = None, history: History | None = None) -> None:
        self.clock: Clock = _validate.clock(clock)
        self.history = _validate.history(history)
        self._started: dict[int, tuple[str, float]] = {}
        self._ran: set[int] = set()

    def before_call(self, cb: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        """Listener hook: remember the state and start time of the call."""
        self._started[id(cb)] = (_pybreaker_state(cb.current_state), self.clock.monotonic())
        self._ran.add(id(cb))

    def _call(self, cb: Any, outcome: str) -> None:
        state, started = self._started.pop(id(cb), (_pybreaker_state(cb.current_state),
                                                    self.clock.monotonic()))
        emit(BREAKER_CALL, cb.name or "pybreaker", self.clock, history=self.history,
             state=state, outcome=outcome, duration=self.clock.monotonic() - started)

    def success(self, cb: Any) -> None:
        """Listener hook: a call succeeded."""
        self._call(cb, "ok")

    def failure(self, cb: Any, exc: BaseException) -> None:
        """Listener hook: a call failed."""
        self._call(cb, "error")

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        """Listener hook: a transition (pybreaker's ``half-open`` becomes ``half_open``)."""
        if old_state is None:
            return
        emit(BREAKER_TRANSITION, cb.name or "pybreaker", self.clock, history=self.history,
             **{"from": _pybreaker_state(old_state), "to": _pybreaker_state(new_state)})

    def call(self, cb: Any, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``cb.call(fn, ...)``, recording a rejection (``CircuitBreakerError``) as an event."""
        import pybreaker

        self._ran.discard(id(cb))
        try:
            return cb.call(fn, *args, **kwargs)  # type: ignore[no-any-return]
        except pybreaker.CircuitBreakerError:
            if id(cb) not in self._ran:  # rejected before the call ran
                emit(BREAKER_REJECTED, cb.name or "pybreaker", self.clock,
                     history=self.history, retry_after=float(cb.reset_timeout))
            raise
        finally:
            self._ran.discard(id(cb))

    @classmethod
    def listener(cls, *, clock: Clock | None = None, history: History | None = None) -> Any:
        """A ``pybreaker.CircuitBreakerListener`` instance that records into the history."""
        import pybreaker

        class _Listener(cls, pybreaker.CircuitBreakerListener):  # type: ignore[valid-type,misc]
            pass

        return _Listener(clock=clock, history=history)
