"""One reading of system memory: psutil, tightened by a cgroup v2 limit when present."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["MemoryReading", "read_cgroup_v2", "read_system_memory"]

DEFAULT_CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True, slots=True)
class MemoryReading:
    """Bytes used of bytes total, where they came from (``psutil`` or ``cgroup``)."""

    used: int
    total: int
    source: str

    @property
    def fraction(self) -> float:
        """``used / total`` (0.0 when the total is unknown)."""
        return self.used / self.total if self.total > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        """Plain builtins, with ``percent``."""
        return {**asdict(self), "percent": round(self.fraction * 100, 2)}

    def to_json(self) -> str:
        """``to_dict`` as JSON."""
        return json.dumps(self.to_dict())


def read_cgroup_v2(root: Path = DEFAULT_CGROUP_ROOT) -> MemoryReading | None:
    """The container's ``memory.current`` of ``memory.max``, or None when unlimited/absent."""
    try:
        limit = (root / "memory.max").read_text().strip()
        current = (root / "memory.current").read_text().strip()
    except OSError:
        return None
    if limit == "max" or not limit.isdigit() or not current.isdigit():
        return None
    return MemoryReading(used=int(current), total=int(limit), source="cgroup")


def read_system_memory(cgroup_root: Path | None = DEFAULT_CGROUP_ROOT) -> MemoryReading | None:
    """The tighter of psutil's view and the cgroup v2 limit; None when neither is readable.

    psutil's ``used`` is ``total - available`` (what ``percent`` is computed from).
    """
    readings: list[MemoryReading] = []
    try:
        import psutil
    except ImportError:
        pass
    else:
        vm = psutil.virtual_memory()
        readings.append(MemoryReading(used=vm.total - vm.available, total=vm.total,
                                      source="psutil"))
    if cgroup_root is not None:
        cgroup = read_cgroup_v2(cgroup_root)
        if cgroup is not None:
            readings.append(cgroup)
    return max(readings, key=lambda r: r.fraction, default=None)
