"""The quick-start suite: failpoints, fault plans, the virtual clock and the event history."""

from __future__ import annotations

import contextlib

import pytest
from inventory import Inventory, StoreUnavailable

import faults as fp
from faults import Action, Fault, Trigger


@pytest.fixture
def inventory(clock):  # type: ignore[no-untyped-def]
    return Inventory(clock=clock, stock={"gpu-a100": 3})


@pytest.mark.faults(Fault("inventory.read", Action.raise_(StoreUnavailable), Trigger.first(2)))
def test_reservation_survives_two_store_outages(inventory, clock):  # type: ignore[no-untyped-def]
    assert inventory.reserve("gpu-a100", 2)
    assert inventory.stock["gpu-a100"] == 1
    assert clock.monotonic() == pytest.approx(0.2 + 0.4)  # backoff ran on virtual time


def test_reservation_gives_up_after_its_attempts(inventory, faults, history):  # type: ignore[no-untyped-def]
    faults.inject("inventory.write", Action.raise_(StoreUnavailable("down")))
    with pytest.raises(StoreUnavailable):
        inventory.reserve("gpu-a100", 1)
    assert inventory.stock["gpu-a100"] == 3  # nothing half-applied
    assert history.kinds().count("fault.fired") == 3


def test_slow_store_costs_virtual_time_only(inventory, faults, clock):  # type: ignore[no-untyped-def]
    faults.inject("inventory.read", Action.delay(30.0))
    assert inventory.reserve("gpu-a100", 1)
    assert clock.monotonic() == 30.0


@pytest.mark.parametrize("seed", range(20))
def test_stock_never_goes_negative_under_random_outages(seed, clock):  # type: ignore[no-untyped-def]
    inventory = Inventory(clock=clock, stock={"gpu-a100": 5})
    with fp.inject("inventory.read", Action.raise_(StoreUnavailable),
                   trigger=Trigger.rate(0.3), seed=seed):
        for _ in range(10):
            with contextlib.suppress(StoreUnavailable):
                inventory.reserve("gpu-a100", 1)
    assert inventory.stock["gpu-a100"] >= 0
    assert inventory.stock["gpu-a100"] + len(inventory.reservations) == 5
