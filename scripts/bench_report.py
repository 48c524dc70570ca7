"""Summarise a pytest-benchmark JSON file as Markdown: medians and ratios against ours.

Usage: ``python scripts/bench_report.py benchmarks.json MACHINE_LINE > ratios.md``.
Within each pytest-benchmark group the first benchmark whose name contains ``ours`` is
the reference; every row gets ``median / reference median`` (above 1: slower than ours).
Ungrouped benchmarks are listed per test module, without ratios. Figures from ``extra_info``
(harness overhead, virtual-time speed-up, ...) are listed beside their benchmark.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

_SKIPPED_INFO = ("resilience",)  # our percentiles, already in report.md


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def _value(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _group(bench: dict[str, Any]) -> str:
    group = bench.get("group")
    return str(group) if group else str(bench["fullname"]).split("::")[0]


def render(data: dict[str, Any], machine: str) -> str:
    """The Markdown report for pytest-benchmark's JSON ``data``."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for bench in data.get("benchmarks", []):
        groups[_group(bench)].append(bench)
    lines = ["# Benchmark ratios", "", f"Machine: {machine}", "",
             "Ratio = median / median of ours in the same group and run "
             "(above 1: slower than ours).", ""]
    for group in sorted(groups):
        rows = groups[group]
        grouped = bool(rows[0].get("group"))
        ours = next((b for b in rows if grouped and "ours" in b["name"]), None)
        lines += [f"## {group}", "", "| benchmark | median | ratio vs ours | notes |",
                  "|---|---|---|---|"]
        for bench in sorted(rows, key=lambda b: b["stats"]["median"]):
            median = float(bench["stats"]["median"])
            ratio = "" if ours is None else f"{median / float(ours['stats']['median']):.2f}x"
            info = {k: v for k, v in bench.get("extra_info", {}).items()
                    if k not in _SKIPPED_INFO}
            notes = ", ".join(f"{k}={_value(v)}" for k, v in info.items())
            lines.append(f"| `{bench['name']}` | {_seconds(median)} | {ratio} | {notes} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    data = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    print(render(data, argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
