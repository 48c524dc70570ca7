"""Pressure levels and the hysteresis rule both monitors share."""

from __future__ import annotations

import enum
from collections.abc import Sequence

from pytest_resilience import _validate

__all__ = ["PressureLevel", "check_fraction", "next_level"]


class PressureLevel(enum.IntEnum):
    """How full memory is; ordered, so ``level >= PressureLevel.CRITICAL`` reads naturally."""

    NORMAL = 0
    WARNING = 1
    CRITICAL = 2
    EMERGENCY = 3

    @property
    def label(self) -> str:
        """The lower-case name written in events and ``status()``."""
        return self.name.lower()


def check_fraction(value: float, name: str) -> float:
    """``value`` as a float in (0, 1], or ``ValueError`` naming ``name``."""
    return _validate.fraction(value, name, low_open=True, what="a fraction of memory",
                              accepted="a number in (0, 1], e.g. 0.8 for 80%")


def next_level(
    previous: PressureLevel, fraction: float, thresholds: Sequence[float], hysteresis: float
) -> PressureLevel:
    """The level after reading ``fraction`` used, given the level before it.

    ``thresholds[i]`` is where level ``i + 1`` starts. A level is entered as soon as the
    reading reaches its threshold and left only once the reading is ``hysteresis`` below
    it, so a reading hovering at a threshold changes the level at most once.
    """
    level = int(previous)
    while level > 0 and fraction < thresholds[level - 1] - hysteresis:
        level -= 1
    entered = sum(1 for t in thresholds if fraction >= t)
    return PressureLevel(max(level, entered))
