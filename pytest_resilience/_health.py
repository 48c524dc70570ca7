"""``HealthRegistry``: concurrent health checks with timeouts, aggregated to one status.

A check returns ``True``/``None`` (healthy) or ``False`` (failed), or raises. Async
checks run as tasks raced against ``clock.asleep(timeout)``; sync checks run in their
own daemon thread bounded by ``timeout`` real seconds, so a hanging check cannot block
the others (its thread is left to finish on its own; the report says it timed out). A
check whose measured duration on the clock exceeds its timeout is also a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from pytest_resilience import _validate
from pytest_resilience._clock import Clock
from pytest_resilience._concurrency import check_timeout
from pytest_resilience._events import emit
from pytest_resilience.kinds import HEALTH_CHECK

__all__ = ["CheckResult", "HealthRegistry", "HealthReport"]

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's outcome: ``status`` is ``healthy``, ``unhealthy`` or ``timeout``."""

    name: str
    status: str
    critical: bool
    duration: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the check passed."""
        return self.status == HEALTHY


@dataclass(frozen=True, slots=True)
class HealthReport:
    """Overall ``status`` (healthy / degraded / unhealthy) and every check's result."""

    status: str
    checks: tuple[CheckResult, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins: ``{"status": ..., "checks": {name: {...}}}``."""
        return {
            "status": self.status,
            "checks": {c.name: {k: v for k, v in asdict(c).items() if k != "name"}
                       for c in self.checks},
        }

    def to_json(self) -> str:
        """``to_dict()`` as JSON."""
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass(frozen=True, slots=True)
class _Check:
    name: str
    fn: Callable[[], Any]
    timeout: float
    critical: bool


class HealthRegistry:
    """Named checks; ``run()`` / ``await arun()`` runs them all concurrently.

    Overall status: ``unhealthy`` if a critical check failed or timed out, ``degraded``
    if only non-critical ones did, else ``healthy``.
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock: Clock = _validate.clock(clock)
        self._checks: dict[str, _Check] = {}

    def register(
        self,
        name: str,
        check: Callable[[], Any],
        *,
        timeout: float = 5.0,
        critical: bool = True,
    ) -> None:
        """Add (or replace) check ``name``."""
        if not callable(check):
            raise TypeError(f"check={_validate.show(check)} is not callable. Pass a function "
                            "or async function.")
        self._checks[name] = _Check(name, check, check_timeout("timeout", timeout), critical)

    def unregister(self, name: str) -> None:
        """Remove check ``name``."""
        del self._checks[name]

    @property
    def names(self) -> list[str]:
        """Registered check names, in registration order."""
        return list(self._checks)

    def run(self) -> HealthReport:
        """Run every check (in a private event loop) and aggregate."""
        return asyncio.run(self.arun())

    async def arun(self) -> HealthReport:
        """Run every check concurrently and aggregate."""
        results = await asyncio.gather(*(self._run_one(c) for c in self._checks.values()))
        failed = [r for r in results if not r.ok]
        if any(r.critical for r in failed):
            status = UNHEALTHY
        elif failed:
            status = DEGRADED
        else:
            status = HEALTHY
        return HealthReport(status, tuple(results))

    async def _run_one(self, check: _Check) -> CheckResult:
        started = self.clock.monotonic()
        status, error = HEALTHY, None
        try:
            value = await self._bounded(check)
        except TimeoutError:
            status, error = "timeout", f"no answer within {check.timeout}s"
        except Exception as exc:
            status, error = UNHEALTHY, repr(exc)
        else:
            if value is False:
                status, error = UNHEALTHY, "check returned False"
        duration = self.clock.monotonic() - started
        if status == HEALTHY and duration > check.timeout:
            status, error = "timeout", f"took {duration:.3f}s, timeout {check.timeout}s"
        emit(HEALTH_CHECK, check.name, self.clock, status=status, duration=duration, error=error)
        return CheckResult(check.name, status, check.critical, duration, error)

    async def _bounded(self, check: _Check) -> Any:
        if inspect.iscoroutinefunction(check.fn):
            work: asyncio.Future[Any] = asyncio.ensure_future(_call_async(check.fn))
            timer = asyncio.ensure_future(self.clock.asleep(check.timeout))
            waiting: tuple[asyncio.Future[Any], ...] = (work, timer)
            real_timeout = None
        else:
            # A thread runs in real time: bound it in real seconds (a check that sleeps
            # on a virtual clock is caught afterwards by its measured duration).
            loop = asyncio.get_running_loop()
            work = loop.create_future()
            threading.Thread(
                target=_call_in_thread, args=(check.fn, work, loop), daemon=True,
                name=f"health-check-{check.name}",
            ).start()
            waiting, real_timeout = (work,), check.timeout
        try:
            await asyncio.wait(waiting, timeout=real_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in waiting:
                if not pending.done():
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pending
        if work.cancelled():
            raise TimeoutError
        return work.result()


async def _call_async(fn: Callable[[], Awaitable[Any]]) -> Any:
    return await fn()


def _call_in_thread(
    fn: Callable[[], Any], fut: asyncio.Future[Any], loop: asyncio.AbstractEventLoop
) -> None:
    def settle(ok: bool, value: Any) -> None:
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    try:
        value, ok = fn(), True
    except Exception as exc:
        value, ok = exc, False
    with contextlib.suppress(RuntimeError):  # the loop closed while the check hung
        loop.call_soon_threadsafe(settle, ok, value)
