"""``report.md``: a compact Markdown summary sized for a CI step summary (verdict first)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_resilience.sla._budgets import format_seconds

__all__ = ["MAX_BYTES", "render_markdown"]

#: GitHub refuses a step summary over 1 MiB; stay well under it.
MAX_BYTES = 512 * 1024
_LADDER = ("p50", "p95", "p99", "p99.9")


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else format_seconds(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as GitHub-flavoured Markdown, truncated under ``MAX_BYTES``."""
    verdict = report["verdict"]
    ok = verdict["failed"] == 0 and verdict["unverified"] == 0
    mark = "✅" if ok else "❌"
    lines = [
        f"## {mark} pytest-resilience: {verdict['passed']}/{verdict['budgets']} SLA budgets met",
        "",
        f"seed `{report['seed']}` ({report['seed_source']}) · faults fired: "
        f"{report['faults']['fired']} · tests: {len(report['tests'])}",
    ]
    if report["lost_workers"]:
        lines.append(
            f"\n**Lost workers** (their samples are missing): {', '.join(report['lost_workers'])}"
        )
    rows = [(t["nodeid"], v) for t in report["tests"] for v in t.get("sla", {}).get("budgets", [])]
    if rows:
        lines += ["", "| test | budget | observed | verdict |", "|---|---|---|---|"]
        failing_first = sorted(rows, key=lambda row: row[1]["passed"] is True)
        for nodeid, v in failing_first:
            state = {True: "✅ pass", False: "❌ fail", None: "⚠️ unverified"}[v["passed"]]
            lines.append(
                f"| `{_cell(nodeid)}` | `{_cell(v['budget'])}` | {_cell(v['reason'])} | {state} |"
            )
    if report["operations"]:
        head = " | ".join(_LADDER)
        lines += [
            "",
            f"| operation | variant | n | errors | {head} | max |",
            "|---|---|---:|---:|" + "---:|" * len(_LADDER) + "---:|",
        ]
        for op in report["operations"]:
            cells = " | ".join(_seconds(op["percentiles"].get(p)) for p in _LADDER)
            lines.append(
                f"| `{_cell(op['operation'])}` | {op['variant']} | {op['count']} | "
                f"{op['errors']} | {cells} | {_seconds(op['max'])} |"
            )
        lines.append(
            f"\nQuantiles are within ±{report['operations'][0]['alpha']:.1%}; n/a: fewer "
            "samples than 10/(1-q)."
        )
    text = "\n".join(lines) + "\n"
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_BYTES:
        cut = encoded[: MAX_BYTES - 200].decode("utf-8", "ignore").rsplit("\n", 1)[0]
        text = cut + "\n\n… truncated: see report.json / report.html for every row.\n"
    return text
