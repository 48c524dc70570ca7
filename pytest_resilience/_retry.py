"""``Retry`` and the ``retry`` decorator: attempts, deadline, capped backoff with jitter.

The success path does almost nothing: one clock read, the call, and two checks that
nobody listens to events. Delays of zero never reach the clock's ``sleep``.
"""

from __future__ import annotations

import functools
import inspect
import random
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast, overload

from pytest_resilience import _events, _validate
from pytest_resilience._backoff import JITTERS, Backoff, Jittered
from pytest_resilience._clock import Clock
from pytest_resilience._errors import Attempt, RetryError
from pytest_resilience._events import emit
from pytest_resilience._retry_budget import RetryBudget
from pytest_resilience.kinds import RETRY_ATTEMPT, RETRY_GIVEUP, RETRY_SLEEP

__all__ = ["Backoff", "Retry", "RetryBudget", "RetryState", "retry"]

P = ParamSpec("P")
T = TypeVar("T")

#: One retried call's attempts: (number, started, ended, exception), as ``Attempt`` takes.
_Attempts = list[tuple[int, float, float, BaseException | None]]

_REFUSED = frozenset({types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType})
_DEFAULT_BACKOFF = Backoff.exponential()


@dataclass(frozen=True, slots=True)
class RetryState:
    """What ``on_retry`` receives before each wait."""

    name: str
    attempt: int
    delay: float
    elapsed: float
    exception: BaseException | None
    result: Any


def _exception_predicate(
    retry_on: object,
) -> tuple[type[BaseException], ...] | Callable[[BaseException], bool]:
    """The retryable exception types (a tuple), or the predicate that decides."""
    if isinstance(retry_on, type) and issubclass(retry_on, BaseException):
        retry_on = (retry_on,)
    if isinstance(retry_on, tuple) and retry_on and all(
        isinstance(t, type) and issubclass(t, BaseException) for t in retry_on
    ):
        return retry_on
    if callable(retry_on) and not isinstance(retry_on, tuple):
        return cast(Callable[[BaseException], bool], retry_on)
    raise TypeError(
        f"retry_on={_validate.show(retry_on)} is not an exception type, a tuple of them or a "
        f"predicate. "
        "Pass e.g. retry_on=(ConnectionError, TimeoutError) or retry_on=lambda exc: ..."
    )


def _never(exc: BaseException) -> bool:
    return False


def _refuse(fn: object, what: str) -> TypeError:
    return TypeError(
        f"fn={fn!r} {what}: Retry cannot re-run a generator or coroutine object once "
        "created. Retry the function that builds the items (collect them in a list), and "
        "use 'await policy.acall(fn)' or decorate the 'async def' for coroutines."
    )


class Retry:
    """A retry policy; use ``.call(fn, ...)``, ``await .acall(fn, ...)`` or as a decorator.

    ``retry_on`` is an exception type, a tuple of them or a predicate over the exception;
    ``retry_if_result`` a predicate over the return value. ``deadline`` bounds the total
    time from the first attempt: a wait that would pass it gives up instead. When every
    attempt fails, ``RetryError`` (with every ``Attempt``) is raised, or the last exception
    itself with ``reraise=True``. Exceptions that are not retryable propagate unchanged.
    """

    def __init__(
        self,
        *,
        attempts: int = 3,
        backoff: Backoff | None = None,
        jitter: str = "full",
        retry_on: object = (Exception,),
        retry_if_result: Callable[[Any], bool] | None = None,
        deadline: float | None = None,
        reraise: bool = False,
        on_retry: Callable[[RetryState], object] | None = None,
        budget: RetryBudget | None = None,
        seed: int | None = None,
        clock: Clock | None = None,
        name: str = "retry",
    ) -> None:
        attempts = _validate.count(attempts, "attempts", what="a valid number of attempts",
                                   accepted="an integer >= 1 (1 = no retry)")
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(
                f"backoff={_validate.show(backoff)} is not a Backoff. Pass "
                "Backoff.exponential(...), Backoff.linear(...) or Backoff.constant(...)."
            )
        jitter = _validate.one_of(jitter, "jitter", JITTERS, what="a jitter mode")
        if deadline is not None:
            deadline = _validate.seconds(deadline, "deadline", positive=True,
                                         accepted="seconds > 0, or None")
        _validate.callable_or_none(retry_if_result, "retry_if_result",
                                   accepted="a predicate over the result, or None")
        _validate.callable_or_none(on_retry, "on_retry",
                                   accepted="a function of one RetryState, or None")
        if budget is not None and not isinstance(budget, RetryBudget):
            raise TypeError(f"budget={_validate.show(budget)} is not a RetryBudget. Pass "
                            "RetryBudget(ratio=..., window=...), or None.")
        seed = _validate.seed(seed, "seed")
        clock = _validate.clock(clock)
        self.attempts = attempts
        self.backoff = backoff or _DEFAULT_BACKOFF
        self.jitter = jitter
        self.deadline = None if deadline is None else float(deadline)
        self.reraise = reraise
        self.on_retry = on_retry
        self.budget = budget
        self.name = name
        self.retry_if_result = retry_if_result
        retryable = _exception_predicate(retry_on)
        self._retry_types = retryable if isinstance(retryable, tuple) else None
        self._retry_check: Callable[[BaseException], bool] = (
            retryable if not isinstance(retryable, tuple) else _never)
        self._rng = random.Random(seed)
        self._delays: Jittered | None = None  # see _delay_source
        self.clock: Clock = clock
        self._mono = self.clock.monotonic
        self._plain = retry_if_result is None and budget is None

    # -- sync ------------------------------------------------------------------------
    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` under this policy."""
        started = self._mono()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            return self._retry_sync(fn, args, kwargs, started, exc, None)
        if (
            self._plain
            and result.__class__ not in _REFUSED
            and not _events.listening()
        ):
            return result
        return self._first_result(fn, args, kwargs, started, result)

    def _first_result(
        self, fn: Callable[..., T], args: Any, kwargs: Any, started: float, result: T
    ) -> T:
        if result.__class__ in _REFUSED:
            if isinstance(result, types.CoroutineType | types.GeneratorType):
                result.close()
            raise _refuse(fn, "returned a generator or coroutine")
        if self.retry_if_result is None or not self.retry_if_result(result):
            if self.budget is not None:
                self.budget.record_call()
            emit(RETRY_ATTEMPT, self.name, self.clock, attempt=1, outcome="ok", error=None,
                 elapsed=self._mono() - started)
            return result
        return self._retry_sync(fn, args, kwargs, started, None, result)

    def _retry_sync(  # noqa: PLR0917 - internal, called from the hot path
        self,
        fn: Callable[..., T],
        args: Any,
        kwargs: Any,
        started: float,
        exc: BaseException | None,
        result: Any,
    ) -> T:
        if self.budget is not None:
            self.budget.record_call()
        attempts: _Attempts = []
        delays = self._delays
        if delays is None or delays.backoff is not self.backoff or delays.jitter != self.jitter:
            delays = self._delay_source()
        judge, mono, sleep = self._judge, self._mono, self.clock.sleep
        # Whether this call's events are heard is decided once, at its first failure.
        heard = _events.listening()
        quiet = self.retry_if_result is None and not heard
        delay = judge(attempts, delays, started, 1, started, exc, result, heard)
        attempt = 1
        while True:
            if delay > 0:
                sleep(delay)
            attempt += 1
            begun = mono()
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                delay = judge(attempts, delays, started, attempt, begun, error, None, heard)
                continue
            if not quiet:  # a success nobody hears about needs no record
                delay = judge(attempts, delays, started, attempt, begun, None, result, heard)
                if delay >= 0:
                    continue
            # The attempts hold their exceptions, whose tracebacks hold this frame: let
            # go of them now, rather than leave a cycle to the garbage collector.
            attempts.clear()
            return cast(T, result)

    # -- async -----------------------------------------------------------------------
    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` under this policy; waits use ``clock.asleep``."""
        run: tuple[_Attempts, Jittered] | None = None
        started = self._mono()
        attempt = 0
        heard = False
        while True:
            attempt += 1
            begun = self._mono() if attempt > 1 else started
            try:
                result = await fn(*args, **kwargs)
            except BaseException as error:
                if run is None:
                    run, heard = self._begin(), _events.listening()
                delay = self._judge(*run, started, attempt, begun, error, None, heard)
            else:
                if run is None:
                    heard = _events.listening()
                    if self._plain and not heard:
                        return result
                    run = self._begin()
                delay = self._judge(*run, started, attempt, begun, None, result, heard)
                if delay < 0:
                    run[0].clear()  # no cycle left to the collector (see _retry_sync)
                    return result
            if delay > 0:
                await self.clock.asleep(delay)

    # -- decorator -------------------------------------------------------------------
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Decorate ``fn`` (plain or ``async def``); generator functions are refused."""
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise _refuse(fn, "is a generator function")
        if inspect.iscoroutinefunction(fn):
            acall = self.acall

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await acall(fn, *args, **kwargs)

            return cast(Callable[P, T], async_wrapper)
        mono, retry_sync, first_result = self._mono, self._retry_sync, self._first_result
        plain = self._plain

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            started = mono()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                return retry_sync(fn, args, kwargs, started, exc, None)
            if plain and result.__class__ not in _REFUSED and not _events.listening():
                return result
            return first_result(fn, args, kwargs, started, result)

        return wrapper

    def __repr__(self) -> str:
        return (
            f"Retry(name={self.name!r}, attempts={self.attempts}, backoff={self.backoff}, "
            f"jitter={self.jitter!r}, deadline={self.deadline})"
        )



    # -- one retried call's bookkeeping -------------------------------------------------
    def _begin(self) -> tuple[_Attempts, Jittered]:
        """An awaited call went wrong: its attempt records and its delay source (the sync
        path does the same inline)."""
        if self.budget is not None:
            self.budget.record_call()
        return [], self._delay_source()

    def _delay_source(self) -> Jittered:
        """One call's delays: stateless jitter modes share one source (its capped delays
        computed once) while ``backoff`` and ``jitter`` stay as they are; decorrelated
        jitter needs a source per call."""
        shared = self._delays  # (the sync path checks this inline)
        if shared is not None and shared.backoff is self.backoff and shared.jitter == self.jitter:
            return shared
        source = Jittered(self.backoff, self.jitter, self._rng)
        self._delays = None if self.jitter == "decorrelated" else source
        return source

    def _judge(  # noqa: PLR0912, PLR0917 - the hot path of a retry, kept in one frame
        self,
        attempts: _Attempts,
        delays: Jittered,
        started: float,
        number: int,
        begun: float,
        exc: BaseException | None,
        result: Any,
        heard: bool,
    ) -> float:
        """Record attempt ``number``; the delay before the next one, ``-1`` when done.

        Raises the exception or ``RetryError`` when the call gives up. Attempts are
        kept as plain tuples; ``Attempt`` objects are built only for a ``RetryError``.
        ``heard``: whether this call's events are wanted (decided at its first failure).
        """
        now = self._mono()
        attempts.append((number, begun, now, exc))
        if exc is None:
            check = self.retry_if_result
            if check is None or not check(result):
                if heard:
                    emit(RETRY_ATTEMPT, self.name, self.clock, attempt=number,
                         outcome="ok", error=None, elapsed=now - started)
                return -1.0
        if heard:
            error = f"result {result!r}" if exc is None else repr(exc)
            emit(RETRY_ATTEMPT, self.name, self.clock, attempt=number, outcome="error",
                 error=error, elapsed=now - started)
        if exc is not None:
            retry_types = self._retry_types
            if not (isinstance(exc, retry_types) if retry_types is not None
                    else self._retry_check(exc)):
                self._give_up(attempts, "not_retryable", exc, reraise=True)
        if number >= self.attempts:
            self._give_up(attempts, "attempts", exc)
        table = delays.table
        if number <= len(table):  # Jittered.next, inlined (it runs once per retry)
            delay, spread = table[number - 1]
            if spread:
                delay += spread * delays.random()
        else:
            delay = delays.next(number)
        if self.deadline is not None and now + delay - started > self.deadline:
            self._give_up(attempts, "deadline", exc)
        if self.budget is not None and not self.budget.try_spend():
            self._give_up(attempts, "budget", exc)
        if self.on_retry is not None:
            self.on_retry(RetryState(self.name, number, delay, now - started, exc, result))
        if heard:
            emit(RETRY_SLEEP, self.name, self.clock, attempt=number, delay=delay)
        return delay

    def _give_up(self, attempts: _Attempts, reason: str, exc: BaseException | None, *,
                 reraise: bool = False) -> None:
        count = len(attempts)
        emit(RETRY_GIVEUP, self.name, self.clock, attempts=count, reason=reason)
        if exc is not None and (reraise or self.reraise):
            raise exc
        last = repr(exc) if exc is not None else "result rejected by retry_if_result"
        plural = "s" if count != 1 else ""
        raise RetryError(
            f"{self.name}: gave up after {count} attempt{plural} ({reason}); last: {last}",
            attempts=[Attempt(*attempt) for attempt in attempts],
            context={"reason": reason, "name": self.name},
        ) from exc


@overload
def retry(fn: Callable[P, T], /) -> Callable[P, T]: ...
@overload
def retry(
    fn: None = None, /, **options: Any
) -> Callable[[Callable[P, T]], Callable[P, T]]: ...
def retry(fn: Callable[P, T] | None = None, /, **options: Any) -> Any:
    """Decorator shorthand: ``@retry`` or ``@retry(attempts=5, retry_on=OSError, ...)``."""
    policy = Retry(**options)
    return policy if fn is None else policy(fn)
