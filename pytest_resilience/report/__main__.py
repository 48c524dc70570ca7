"""``python -m pytest_resilience.report compare BASELINE... --current RUN... --fail p99:+10%``.

Exit status: 0 no regression, 1 regression, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pytest_resilience.report._compare import Rule, compare_reports
from pytest_resilience.report._json import load_report
from pytest_resilience.sla._budgets import Budget


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_resilience.report")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="fail when percentiles regress against a baseline")
    cmp.add_argument("baseline", nargs="+", help="baseline report.json file(s)")
    cmp.add_argument(
        "--current", nargs="+", required=True, help="report.json file(s) of the run to check"
    )
    cmp.add_argument(
        "--fail",
        action="append",
        required=True,
        metavar="FIELD:+N%",
        help="regression rule, e.g. p99:+10% (repeatable)",
    )
    cmp.add_argument(
        "--noise-floor",
        default="0s",
        metavar="DURATION",
        help="ignore latency growth below this absolute amount, e.g. 1ms (default 0s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        rules = [Rule.parse(text) for text in args.fail]
        floor = Budget.parse(f"max<{args.noise_floor}").threshold
        baselines = [load_report(path) for path in args.baseline]
        currents = [load_report(path) for path in args.current]
        regressions, notes = compare_reports(baselines, currents, rules, noise_floor=floor)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"compare: {exc}\n")
        return 2
    for note in notes:
        sys.stdout.write(f"note: {note}\n")
    for regression in regressions:
        sys.stdout.write(f"REGRESSION {regression.describe()}\n")
    runs = f"{len(baselines)} baseline / {len(currents)} current run(s), medians"
    if regressions:
        sys.stdout.write(f"{len(regressions)} regression(s) ({runs}).\n")
        return 1
    sys.stdout.write(f"no regression ({runs}).\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
