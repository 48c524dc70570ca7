"""The public fault API: failpoints, fault plans and their activation.

Place ``faults.failpoint("name")`` in code under test; it does nothing until a plan arms
it. Family injectors live in ``faults.memory``, ``faults.cuda``, ``faults.chroma``,
``faults.network`` and ``faults.clock``; the chaos families in ``faults.families``;
Hypothesis strategies in ``faults.strategies``. This module imports none of them.
"""

from __future__ import annotations

from faults._plan import Action, Fault, FaultPlan, Scheduled, Trigger, allow_plan_modules
from faults._registry import (
    ActivePlan,
    activate,
    afailpoint,
    armed_failpoints,
    disarm_all,
    failpoint,
    inject,
    instrument,
)
from faults._scope import FaultScope

__distribution__ = "pytest-resilience"

__all__ = [
    "Action",
    "ActivePlan",
    "Fault",
    "FaultPlan",
    "FaultScope",
    "Scheduled",
    "Trigger",
    "activate",
    "afailpoint",
    "allow_plan_modules",
    "armed_failpoints",
    "disarm_all",
    "failpoint",
    "inject",
    "instrument",
]
