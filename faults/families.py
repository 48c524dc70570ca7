"""Fault families: what a chaos plan's entries target, and how each is applied and undone.

``failpoints({...})``, ``clock_skews(target=...)``, ``memory_pressures()``,
``cuda_spikes()``, ``chroma_corruptions(store)``, ``network_toxics(proxy)`` and
``subprocess_failures(command)`` build the
families a chaos run draws from (``@pytest.mark.chaos(families=[...])``); the names
``"clock"``, ``"memory"`` and ``"cuda"`` build the defaults. A family of your own is a
class with ``name`` and ``apply(entry, clock=, history=)`` (plus ``around`` for a per-run
set-up, and ``entries`` to generate its plan entries) registered with
``register_family(name, factory)``. Nothing here imports Hypothesis.
"""

from __future__ import annotations

from faults._families import (
    NETWORK_KINDS,
    ChromaCorruptions,
    ClockSkews,
    CudaSpikes,
    Failpoints,
    Family,
    MemoryPressures,
    NetworkToxics,
    PerRun,
    SubprocessFailures,
    chroma_corruptions,
    clock_skews,
    cuda_spikes,
    failpoints,
    family_named,
    memory_pressures,
    network_toxics,
    register_family,
    resolve_families,
    subprocess_failures,
)

__all__ = [
    "NETWORK_KINDS",
    "ChromaCorruptions",
    "ClockSkews",
    "CudaSpikes",
    "Failpoints",
    "Family",
    "MemoryPressures",
    "NetworkToxics",
    "PerRun",
    "SubprocessFailures",
    "chroma_corruptions",
    "clock_skews",
    "cuda_spikes",
    "failpoints",
    "family_named",
    "memory_pressures",
    "network_toxics",
    "register_family",
    "resolve_families",
    "subprocess_failures",
]
