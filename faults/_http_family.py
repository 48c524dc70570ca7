"""The HTTP fault family: ``HttpFault``s on the test's ``HttpFaultProxy`` in fault plans.

Like every family it imports no Hypothesis: its entries are generated in
``faults/_strategies.py`` (``_http``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, final

from faults._families import ProxyFamily
from faults._plan import Scheduled
from pytest_resilience import History, VirtualClock, validate

if TYPE_CHECKING:
    from faults.http import HttpFaultProxy

__all__ = ["HTTP_KINDS", "HttpFaults", "http_faults"]

#: Faults the HTTP family draws, with the parameter each takes and its least value
#: (``abort`` draws a status from ``statuses``, ``drop_header`` a name from ``headers``).
HTTP_KINDS: dict[str, tuple[str, int]] = {
    "abort": ("status", 0), "delay": ("ms", 1), "truncate_body": ("nbytes", 0),
    "drop_header": ("header", 0),
}


@final
class HttpFaults(ProxyFamily["HttpFaultProxy"]):
    """The HTTP family: from a virtual time on, for ``duration`` seconds, an HTTP fault on
    the test's ``HttpFaultProxy`` for the requests matching one of ``paths``.

    ``abort`` answers with one of ``statuses`` (with ``Retry-After: 1``), ``delay`` holds
    requests up to ``max_ms``, ``truncate_body`` cuts the body after up to ``max_bytes``
    bytes, ``drop_header`` removes one of ``headers``; each applies to a share of the
    matching requests drawn from ``rates`` (the proxy's seeded RNG flips the coin per
    request, reseeded per run, so a plan replays exactly). During each plan the proxy
    serves on the run's clock and history (``HttpFaultProxy.run_on``). Values shrink
    toward the first status, path, header and rate, 1 ms, 0 bytes, 10 ms durations and
    late starts.
    """

    name = "http"

    def __init__(self, proxy: HttpFaultProxy | Callable[[], HttpFaultProxy], *,
                 kinds: Sequence[str] = tuple(HTTP_KINDS), paths: Sequence[str] = ("*",),
                 statuses: Sequence[int] = (503, 429),
                 headers: Sequence[str] = ("Content-Type",), rates: Sequence[float] = (1.0,),
                 max_ms: int = 2000, max_bytes: int = 1024, swarm: bool = True) -> None:
        from faults.http import Selector, abort, drop_header

        given: dict[str, object] = {"kinds": kinds, "paths": paths, "statuses": statuses,
                                    "headers": headers, "rates": rates}
        lists: dict[str, tuple[Any, ...]] = {}
        for arg, values in given.items():
            if isinstance(values, str | bytes) or not isinstance(values, Iterable):
                raise TypeError(f"{arg}={validate.show(values)} is not a list. Pass a "
                                "list of at least one value.")
            lists[arg] = tuple(values)
        kinds, paths, statuses = lists["kinds"], lists["paths"], lists["statuses"]
        headers, rates = lists["headers"], lists["rates"]
        unknown = [k for k in kinds if not isinstance(k, str) or k not in HTTP_KINDS]
        if not kinds or unknown:
            raise ValueError(f"kinds={validate.show(given['kinds'])} names no HTTP fault or "
                             f"unknown ones ({validate.show(unknown)}). Pass some of: "
                             f"{', '.join(HTTP_KINDS)}.")
        checks: dict[str, Callable[[Any], object]] = {
            "paths": lambda path: Selector.build(path, None, 1.0, None),
            "statuses": abort, "headers": drop_header,
            "rates": lambda rate: Selector.build("*", None, rate, None),
        }
        for arg, check in checks.items():
            if not lists[arg]:
                raise ValueError(f"{arg}={validate.show(given[arg])} names nothing. Pass a "
                                 "list of at least one value.")
            for value in lists[arg]:
                try:
                    check(value)
                except (TypeError, ValueError) as exc:  # name the list, then the item
                    raise type(exc)(f"{arg}={validate.show(given[arg])}: {exc}") from None
        self.proxy = proxy
        self.kinds, self.paths, self.statuses, self.headers = kinds, paths, statuses, headers
        self.rates = tuple(float(r) for r in rates)
        self.max_ms = validate.count(max_ms, "max_ms", what="valid")
        self.max_bytes = validate.count(max_bytes, "max_bytes", what="valid")
        self.swarm = swarm

    def apply(self, entry: Scheduled, *, clock: VirtualClock,
              history: History | None) -> AbstractContextManager[Any] | None:
        """Install the fault until the entry is undone."""
        from faults import http

        proxy = self._run_proxy(entry)
        params = entry.params
        if entry.kind == "abort":
            fault = http.abort(int(params["status"]), retry_after=1)
        elif entry.kind == "delay":
            fault = http.delay(float(params["ms"]))
        elif entry.kind == "truncate_body":
            fault = http.truncate_body(int(params["nbytes"]))
        else:
            fault = http.drop_header(str(params["header"]))
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
