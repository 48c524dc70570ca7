"""Fixtures of the network family: ``fault_proxy`` (TCP toxics) and ``http_fault_proxy``
(HTTP faults), plus the report section a failing test gets about its proxies.

Clock faults need no fixture of their own: enter them in the ``faults`` fixture
(``faults.enter(faults_clock.skew(-3600))``), which undoes them at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_resilience._plugin.state import (
    derive_seed,
    register_once,
    reset_after_each_plan,
    test_clock,
)

if TYPE_CHECKING:
    from pytest_resilience import History
    from pytest_resilience._clock import Clock

_FACTORIES = pytest.StashKey[list["ProxyFactory"]]()


class ProxyFactory:
    """``fault_proxy(upstream, name=...)`` / ``http_fault_proxy(...)`` start a proxy.

    Each proxy runs on the test's clock (the ``clock`` fixture when the test uses it:
    toxics and delays then wait in virtual time, driven by the test) and writes to the
    test's history, unless given ``clock=``/``history=``; it draws its decisions from a
    seed derived from the test's seed and its name, and is stopped (every socket closed,
    thread joined) at teardown.
    """

    def __init__(self, kind: str, seed: int, *, clock: Clock, history: History) -> None:
        self.kind = kind
        self.seed = seed
        self.clock = clock
        self.history = history
        self.proxies: list[Any] = []
        self._retired: list[Any] = []

    def __call__(self, upstream: tuple[str, int], *, name: str | None = None,
                 seed: int | None = None, clock: Clock | None = None,
                 history: History | None = None) -> Any:
        """Start a proxy on ``127.0.0.1`` in front of ``upstream``."""
        if self.kind == "http":
            from faults.http import HttpFaultProxy as proxy_class
        else:
            from faults.network import FaultProxy as proxy_class  # type: ignore[assignment]
        name = name if name is not None else self.kind
        if any(p.name == name for p in self.proxies):
            raise ValueError(
                f"name={name!r} is already used by a proxy in this test. Pass another name=."
            )
        proxy = proxy_class(
            upstream, name=name, seed=derive_seed(self.seed, name) if seed is None else seed,
            clock=self.clock if clock is None else clock,
            history=self.history if history is None else history)
        self.proxies.append(proxy.start())
        return proxy

    def plan_reset(self) -> Callable[[], None]:
        """For a chaos test: after each plan, stop the proxies the plan started and
        remove every fault from (and bring up) those started before it."""
        kept = len(self.proxies)

        def reset() -> None:
            started, self.proxies[kept:] = self.proxies[kept:], []
            for proxy in reversed(started):
                proxy.stop()
            self._retired.extend(started)
            for proxy in self.proxies:
                proxy.reset()

        return reset

    def close(self) -> None:
        """Stop every proxy (last first), even when one fails to stop."""
        errors: list[BaseException] = []
        for proxy in [*reversed(self.proxies), *self._retired]:
            try:
                proxy.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        if errors:
            raise errors[0]

    def explain(self) -> list[str]:
        """Lines for a failing test's report: what its proxies refused."""
        lines = []
        for proxy in [*self.proxies, *self._retired]:
            refused = proxy.stats().refused
            if refused:
                host, port = proxy.upstream
                lines.append(
                    f"proxy {proxy.name!r}: the upstream {host}:{port} refused {refused} "
                    "connection(s). The first client after it went away got a reset (TCP "
                    "cannot refuse a connection already accepted), the later ones a "
                    "refusal; see the proxy.upstream events.")
        return lines


def _factory(request: pytest.FixtureRequest, kind: str, seed: int,
             history: History) -> Iterator[ProxyFactory]:
    factory = ProxyFactory(kind, seed, clock=test_clock(request), history=history)
    request.node.stash.setdefault(_FACTORIES, []).append(factory)
    register_once(request.config, "resilience-proxies", ProxyReports)
    reset_after_each_plan(request.node, factory.plan_reset)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def fault_proxy(request: pytest.FixtureRequest, resilience_seed: int,
                history: History) -> Iterator[ProxyFactory]:
    """Start loopback ``FaultProxy``s for this test: ``proxy = fault_proxy(("127.0.0.1", port))``.

    Proxies run on the test's clock (virtual when the test uses the ``clock`` fixture:
    toxics wait in virtual time, driven by the test) and write to the test's history,
    unless given ``clock=``/``history=``; toxic decisions are seeded from the test's
    seed; every proxy is stopped at teardown, even when the test failed.
    """
    yield from _factory(request, "proxy", resilience_seed, history)


@pytest.fixture
def http_fault_proxy(request: pytest.FixtureRequest, resilience_seed: int,
                     history: History) -> Iterator[ProxyFactory]:
    """Start loopback ``HttpFaultProxy``s: ``proxy = http_fault_proxy(("127.0.0.1", port))``.

    Same defaults as ``fault_proxy`` (the test's clock, history and seed; stopped at
    teardown); needs h11 (the ``http`` extra).
    """
    yield from _factory(request, "http", resilience_seed, history)


class ProxyReports:
    """Registered by the first test that starts a proxy (no per-test hook before)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """A failing test that used proxies says what they refused."""
        report = yield
        if report.when == "call" and report.failed:
            lines = [line for f in item.stash.get(_FACTORIES, []) for line in f.explain()]
            if lines:
                report.sections.append(("resilience: proxies", "\n".join(lines)))
        return report
