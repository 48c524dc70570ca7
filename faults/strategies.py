"""Hypothesis strategies for fault plans, and the plan type a chaos run executes.

``fault_plans(families=[failpoints({...}), clock_skews()], max_faults=4, horizon=10.0)``
generates ``ChaosPlan``s: failpoint ``Fault``s plus ``Scheduled`` faults of other families
(clock, memory, cuda, chroma, network, subprocess) applied at a virtual time, and undone after their
``duration`` param or when the run ends. A family is a pluggable generator of plan
entries (the ``Family`` protocol); each draws its switches once per plan, BUGGIFY-style
(a failpoint site is on or off for the whole plan, then fires by its trigger), so plans
explore combinations instead of averaging them away.

Shrinking goes toward fewer faults (list elements are deleted, sites switched off),
shorter durations (delays, skews, spikes and toxics shrink toward their minimum) and
later triggers (``nth``, ``after`` and scheduled times shrink toward the horizon,
``first`` and ``rate`` toward firing less), so a failing plan shrinks to its essence.
Families that need heavy libraries (torch, chromadb) import them only when applied.
"""

from __future__ import annotations

from faults._strategies import (
    NETWORK_KINDS,
    ChaosPlan,
    ChromaCorruptions,
    ClockSkews,
    CudaSpikes,
    Failpoints,
    Family,
    MemoryPressures,
    NetworkToxics,
    PerRun,
    Scheduled,
    SubprocessFailures,
    chroma_corruptions,
    clock_skews,
    cuda_spikes,
    failpoints,
    fault_plans,
    network_toxics,
    register_family,
    subprocess_failures,
)

__all__ = [
    "NETWORK_KINDS",
    "ChaosPlan",
    "ChromaCorruptions",
    "ClockSkews",
    "CudaSpikes",
    "Failpoints",
    "Family",
    "MemoryPressures",
    "NetworkToxics",
    "PerRun",
    "Scheduled",
    "SubprocessFailures",
    "chroma_corruptions",
    "clock_skews",
    "cuda_spikes",
    "failpoints",
    "fault_plans",
    "network_toxics",
    "register_family",
    "subprocess_failures",
]
