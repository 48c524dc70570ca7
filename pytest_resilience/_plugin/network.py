"""Fixtures of the network family: ``fault_proxy`` (issue 6).

Clock faults need no fixture of their own: enter them in the ``faults`` fixture
(``faults.enter(faults_clock.skew(-3600))``), which undoes them at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_resilience._plugin.state import derive_seed, reset_after_each_plan

if TYPE_CHECKING:
    from faults.network import FaultProxy
    from pytest_resilience import History


class ProxyFactory:
    """The ``fault_proxy`` fixture: ``fault_proxy(upstream, name=...)`` starts a proxy.

    Each proxy draws its toxic decisions from a seed derived from the test's seed and
    the proxy's name, writes to the test's history (so its events carry the test's
    clock), and is stopped (every socket closed, thread joined) at teardown. Toxics wait
    in real time, as the sockets on either side do.
    """

    def __init__(self, seed: int, *, history: History) -> None:
        self.seed = seed
        self.history = history
        self.proxies: list[FaultProxy] = []
        self._retired: list[FaultProxy] = []

    def __call__(self, upstream: tuple[str, int], *, name: str = "proxy",
                 seed: int | None = None) -> FaultProxy:
        """Start a ``FaultProxy`` on ``127.0.0.1`` forwarding to ``upstream``."""
        from faults.network import FaultProxy

        if any(p.name == name for p in self.proxies):
            raise ValueError(
                f"name={name!r} is already used by a proxy in this test. Pass another name=."
            )
        proxy_seed = derive_seed(self.seed, name) if seed is None else seed
        proxy = FaultProxy(upstream, name=name, seed=proxy_seed, history=self.history)
        self.proxies.append(proxy.start())
        return proxy

    def plan_reset(self) -> Callable[[], None]:
        """For a chaos test: after each plan, stop the proxies the plan started and
        remove every toxic from (and bring up) those started before it."""
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


@pytest.fixture
def fault_proxy(request: pytest.FixtureRequest, resilience_seed: int,
                history: History) -> Iterator[ProxyFactory]:
    """Start loopback ``FaultProxy``s for this test: ``proxy = fault_proxy(("127.0.0.1", port))``.

    Toxic decisions are seeded from the test's seed; proxies write to the test's history;
    every proxy is stopped at teardown, even when the test failed.
    """
    factory = ProxyFactory(resilience_seed, history=history)
    reset_after_each_plan(request.node, factory.plan_reset)
    try:
        yield factory
    finally:
        factory.close()
