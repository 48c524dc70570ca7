"""A tiny inventory service with failpoints where production breaks: the store and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import faults
from pytest_resilience import Clock, SystemClock


class StoreUnavailable(ConnectionError):
    """The backing store did not answer."""


@dataclass
class Inventory:
    """Stock counts behind a flaky store, with a reservation that must never go negative."""

    clock: Clock = field(default_factory=SystemClock)
    stock: dict[str, int] = field(default_factory=dict)
    reservations: list[tuple[str, int, float]] = field(default_factory=list)

    def read(self, sku: str) -> int:
        faults.failpoint("inventory.read")
        return self.stock.get(sku, 0)

    def reserve(self, sku: str, qty: int, *, attempts: int = 3, backoff: float = 0.2) -> bool:
        """Reserve ``qty`` of ``sku``, retrying a failing store with exponential backoff."""
        delay = backoff
        for attempt in range(1, attempts + 1):
            try:
                available = self.read(sku)
                faults.failpoint("inventory.write")
            except StoreUnavailable:
                if attempt == attempts:
                    raise
                self.clock.sleep(delay)
                delay *= 2
                continue
            if available < qty:
                return False
            self.stock[sku] = available - qty
            self.reservations.append((sku, qty, self.clock.time()))
            return True
        return False
