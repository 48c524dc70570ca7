"""The HTTP chaos family: ``HttpFault``s on the test's ``HttpFaultProxy`` in fault plans."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

from faults._strategies import Scheduled, _durations, _later_float, _ScheduledFamily
from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import History

if TYPE_CHECKING:
    from faults.http import HttpFaultProxy

__all__ = ["HTTP_KINDS", "HttpFaults", "http_faults"]

#: Faults the HTTP family draws, with the parameter each takes and its least value
#: (``abort`` draws a status from ``statuses``, ``drop_header`` a name from ``headers``).
HTTP_KINDS: dict[str, tuple[str, int]] = {
    "abort": ("status", 0), "delay": ("ms", 1), "truncate_body": ("nbytes", 0),
    "drop_header": ("header", 0),
}


class HttpFaults(_ScheduledFamily):
    """The HTTP family: from a virtual time on, for ``duration`` seconds, an HTTP fault on
    the test's ``HttpFaultProxy`` for the requests matching one of ``paths``.

    ``abort`` answers with one of ``statuses`` (a 429 or 503 with ``Retry-After: 1``),
    ``delay`` holds requests up to ``max_ms``, ``truncate_body`` cuts the body after up
    to ``max_bytes`` bytes, ``drop_header`` removes one of ``headers``; each applies to
    a share of the matching requests drawn from ``rates`` (the proxy's seeded RNG flips
    the coin per request, reseeded per run, so a plan replays exactly). During each plan
    the proxy serves on the run's clock and history (``HttpFaultProxy.run_on``). Values
    shrink toward the first status, path and header, 1 ms, 0 bytes, the first rate,
    10 ms durations and late starts.
    """

    name = "http"

    def __init__(self, proxy: HttpFaultProxy | Callable[[], HttpFaultProxy], *,
                 kinds: Sequence[str] = tuple(HTTP_KINDS), paths: Sequence[str] = ("*",),
                 statuses: Sequence[int] = (503, 429), headers: Sequence[str] = (
                     "Content-Type",), rates: Sequence[float] = (1.0,), max_ms: int = 2000,
                 max_bytes: int = 1024, swarm: bool = True) -> None:
        unknown = [k for k in kinds if k not in HTTP_KINDS]
        if not kinds or unknown:
            raise ValueError(f"kinds={kinds!r} names no HTTP fault or unknown ones "
                             f"({unknown}). Pass some of: {', '.join(HTTP_KINDS)}.")
        for arg, values in (("paths", paths), ("statuses", statuses), ("headers", headers),
                            ("rates", rates)):
            if not values:
                raise ValueError(f"{arg}={values!r} is empty. Pass at least one value.")
        from faults.http import Selector, abort, drop_header

        for path in paths:
            Selector.build(path, None, 1.0, None)
        for status in statuses:
            abort(status)
        for header in headers:
            drop_header(header)
        for rate in rates:
            Selector.build("*", None, rate, None)
        for arg, value in (("max_ms", max_ms), ("max_bytes", max_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg}={value!r} is not valid. Pass an integer >= 1.")
        self.proxy = proxy
        self.kinds = tuple(kinds)
        self.paths, self.statuses = tuple(paths), tuple(statuses)
        self.headers, self.rates = tuple(headers), tuple(float(r) for r in rates)
        self.max_ms, self.max_bytes = max_ms, max_bytes
        super().__init__(swarm=swarm)
        self._current: HttpFaultProxy | None = None
        self._installed = 0

    def _entries(self, horizon: float) -> st.SearchStrategy[Any]:
        values: dict[str, st.SearchStrategy[Any]] = {
            "abort": st.sampled_from(self.statuses),
            "delay": st.integers(1, self.max_ms),
            "truncate_body": st.integers(0, self.max_bytes),
            "drop_header": st.sampled_from(self.headers),
        }

        def build(kind: str) -> st.SearchStrategy[Scheduled]:
            param = HTTP_KINDS[kind][0]
            return st.builds(
                lambda at, path, rate, value, duration: Scheduled(
                    "http", kind, at, {"path": path, "rate": rate, param: value,
                                       "duration": duration}),
                _later_float(horizon), st.sampled_from(self.paths),
                st.sampled_from(self.rates), values[kind], _durations(horizon))

        return st.one_of(*(build(k) for k in self.kinds))

    def around(self, *, clock: VirtualClock,
               history: History | None) -> AbstractContextManager[Any]:
        """Serve the proxy on the run's clock and history for the run."""
        return self._on_run(clock, history)

    @contextmanager
    def _on_run(self, clock: VirtualClock, history: History | None) -> Iterator[None]:
        proxy = self.proxy() if callable(self.proxy) else self.proxy
        self._current, self._installed = proxy, 0
        try:
            with proxy.run_on(clock, history):
                yield
        finally:
            self._current = None

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Install the fault until the entry is undone."""
        from faults import http

        proxy = self._current
        if proxy is None:
            raise RuntimeError(f"{entry} applies outside a chaos run: the http family "
                               "needs its run (around()) to know the proxy.")
        params = entry.params
        if entry.kind == "abort":
            fault = http.abort(int(params["status"]), retry_after=1)
        elif entry.kind == "delay":
            fault = http.delay(float(params["ms"]))
        elif entry.kind == "truncate_body":
            fault = http.truncate_body(int(params["nbytes"]))
        else:
            fault = http.drop_header(str(params["header"]))
        self._installed += 1
        return proxy.add_fault(fault, path=str(params.get("path", "*")),
                               rate=float(params.get("rate", 1.0)),
                               name=f"chaos{self._installed}_{entry.kind}")


def http_faults(proxy: HttpFaultProxy | Callable[[], HttpFaultProxy], *,
                kinds: Sequence[str] = tuple(HTTP_KINDS), paths: Sequence[str] = ("*",),
                statuses: Sequence[int] = (503, 429),
                headers: Sequence[str] = ("Content-Type",), rates: Sequence[float] = (1.0,),
                max_ms: int = 2000, max_bytes: int = 1024, swarm: bool = True) -> HttpFaults:
    """The HTTP family over the test's ``HttpFaultProxy``."""
    return HttpFaults(proxy, kinds=kinds, paths=paths, statuses=statuses, headers=headers,
                      rates=rates, max_ms=max_ms, max_bytes=max_bytes, swarm=swarm)
