"""Hypothesis strategies for fault plans.

``fault_plans(families=[failpoints({...}), clock_skews()], max_faults=4, horizon=10.0)``
generates ``faults.FaultPlan``s: failpoint ``Fault``s plus ``Scheduled`` faults of other
families applied at a virtual time (the families are in ``faults.families``). Each family
is switched on or off once per plan (swarm testing); shrinking goes toward fewer faults,
shorter durations, smaller magnitudes and later triggers. ``triggers`` generates the
failpoint triggers alone. A family of your own generates its entries through an
``entries`` method (the ``Generates`` protocol).
"""

from __future__ import annotations

from faults._strategies import Generates, fault_plans, triggers

__all__ = ["Generates", "fault_plans", "triggers"]
