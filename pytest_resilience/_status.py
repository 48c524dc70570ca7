"""``python -m pytest_resilience status [--json] [--registry module:attr]``.

One screen with memory pressure, GPU devices (or "no GPU") and the health of a
configured registry. ``--registry`` names an object with ``run()`` returning a report
with ``to_dict()`` (a ``HealthRegistry``), or a zero-argument callable that returns one.
Exit status: 0, or 1 when the registry reports ``unhealthy``.
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TextIO, runtime_checkable

from pytest_resilience.memory._gpu import GPUMonitor
from pytest_resilience.memory._pressure import MemoryPressureMonitor

__all__ = ["HealthSource", "collect_status", "load_registry", "main", "render_status"]

_GIB = 1024**3


@runtime_checkable
class HealthSource(Protocol):
    """What ``--registry`` must point at: ``run()`` returning a report with ``to_dict()``
    (``{"status": ..., "checks": {name: {"status": ..., ...}}}``) or that dict itself.
    """

    def run(self) -> Any:
        """Run every check and return the report."""
        ...


def load_registry(spec: str) -> HealthSource:
    """Import ``module:attr`` (calling it if it is not a registry itself)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"registry={spec!r} is not 'module:attr'. Pass e.g. 'myapp.health:registry'."
        )
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not isinstance(target, HealthSource) and callable(target):
        target = target()
    if not isinstance(target, HealthSource):
        raise TypeError(
            f"registry={spec!r} is a {type(target).__name__}, which has no run(). Point it "
            "at a HealthRegistry or a function returning one."
        )
    return target


def _health(source: HealthSource) -> dict[str, Any]:
    report = source.run()
    data = report.to_dict() if hasattr(report, "to_dict") else report
    if not isinstance(data, Mapping) or "status" not in data:
        raise TypeError(
            f"registry.run() returned {report!r}. Return a report with to_dict() or a "
            "mapping with 'status' and 'checks'."
        )
    return dict(data)


def collect_status(registry: HealthSource | None = None) -> dict[str, Any]:
    """``{"memory": ..., "gpu": ..., "health": ...}`` as plain builtins."""
    memory = MemoryPressureMonitor()
    memory.check()
    gpu = GPUMonitor()
    gpu.check()
    return {
        "memory": memory.status(),
        "gpu": gpu.status(),
        "health": None if registry is None else _health(registry),
    }


def render_status(status: Mapping[str, Any]) -> str:
    """``collect_status()`` as a short human-readable screen."""
    lines = []
    memory = status["memory"]
    reading = memory.get("reading")
    if reading:
        lines.append(f"memory  {memory['level']:<9} {reading['percent']:.1f}% used "
                     f"({reading['used'] / _GIB:.1f} of {reading['total'] / _GIB:.1f} GiB, "
                     f"{reading['source']})")
    else:
        lines.append("memory  unavailable")
    gpu = status["gpu"]
    if not gpu["available"]:
        lines.append(f"gpu     {gpu['reason'] or 'no GPU'}")
    for device in gpu["devices"]:
        lines.append(f"gpu {device['index']}   {device['level']:<9} "
                     f"{device['used'] / _GIB:.1f} of {device['total'] / _GIB:.1f} GiB "
                     f"({device['name']})")
    health = status["health"]
    if health is None:
        lines.append("health  no registry (pass --registry module:attr)")
    else:
        lines.append(f"health  {health['status']}")
        for name, check in health.get("checks", {}).items():
            error = f"  {check['error']}" if check.get("error") else ""
            lines.append(f"  {name:<20} {check['status']}{error}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         prog: str = "python -m pytest_resilience status") -> int:
    """The ``status`` command: print the screen (or JSON) and return the exit status."""
    import sys

    parser = argparse.ArgumentParser(prog=prog, description="Memory, GPU and health status.",
                                     epilog="exit status: 0, or 1 when the registry reports "
                                     "unhealthy; 2 bad usage")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--registry", metavar="MODULE:ATTR",
                        help="a HealthRegistry (or a function returning one) to run")
    args = parser.parse_args(argv)
    stream = out if out is not None else sys.stdout
    try:
        registry = load_registry(args.registry) if args.registry else None
    except (ValueError, TypeError, ImportError, AttributeError) as exc:
        parser.error(str(exc))
    status = collect_status(registry)
    text = json.dumps(status, indent=2, default=repr) if args.json else render_status(status)
    stream.write(text + "\n")
    health = status["health"]
    return 1 if health is not None and health["status"] == "unhealthy" else 0
