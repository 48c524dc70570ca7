"""Host memory faults: simulated pressure, ``MemoryError`` at chosen points, a real OOM.

- ``memory_pressure(percent)`` makes every psutil memory reading in this process report
  ``percent`` used: ``psutil.PROCFS_PATH`` points at a copy of ``/proc`` whose
  ``meminfo`` has its ``MemAvailable``/``MemFree`` edited (everything else links to the
  real ``/proc``), so even ``from psutil import virtual_memory`` callers see it. Linux only.
- ``oom_at(target)`` raises ``MemoryError`` at a failpoint or a patched function.
- ``real_oom(limit_bytes, fn)`` runs ``fn`` in a forked child under ``RLIMIT_AS`` and
  reports whether it survived, raised ``MemoryError`` or was killed.
"""

from __future__ import annotations

from faults._memory import (
    MemoryPressure,
    OOMOutcome,
    memory_pressure,
    oom_at,
    real_oom,
)

__all__ = [
    "MemoryPressure",
    "OOMOutcome",
    "memory_pressure",
    "oom_at",
    "real_oom",
]
