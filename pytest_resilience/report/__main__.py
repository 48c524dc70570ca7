"""``pytest-resilience report render|compare`` (also ``python -m pytest_resilience.report``).

``render RUN.json``: write ``report.md`` and ``report.html`` from a ``report.json`` (with
``--compare OLD.json``: deltas against an older run). ``compare BASELINE... --current
RUN... --fail p99:+10%``: exit 1 when a percentile regressed, or when the runs have no
operation in common (nothing was compared). Exit status 2: bad usage or an unreadable
report.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_resilience.report._compare import Rule, common_operations, compare_reports
from pytest_resilience.report._json import load_report
from pytest_resilience.sla._budgets import Budget

__all__ = ["add_compare_arguments", "build", "main", "run", "run_compare"]

PROG = "python -m pytest_resilience.report"
EXIT_REGRESSION, EXIT_USAGE = 1, 2


def add_compare_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``compare`` command's arguments (shared by ``report compare`` and ``compare``)."""
    parser.description = ("Fail when an operation's percentiles regress against a baseline "
                          "(medians of the runs on each side).")
    parser.epilog = ("exit status: 0 no regression, 1 a regression or nothing in common to "
                     "compare, 2 bad usage or an unreadable report")
    parser.add_argument("baseline", nargs="+", help="baseline report.json file(s)")
    parser.add_argument("--current", nargs="+", required=True,
                        help="report.json file(s) of the run to check")
    parser.add_argument("--fail", action="append", required=True, metavar="FIELD:+N%",
                        help="regression rule, e.g. p99:+10%% (repeatable)")
    parser.add_argument("--noise-floor", default="0s", metavar="DURATION",
                        help="ignore latency growth below this absolute amount, e.g. 1ms "
                        "(default 0s)")
    return parser


def build(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``render`` and ``compare`` to ``parser``."""
    parser.description = "Render a report.json again, or compare runs."
    sub = parser.add_subparsers(dest="report_command", required=True, metavar="COMMAND")
    render = sub.add_parser("render", help="write report.md and report.html from a report.json",
                            description="Write report.md and report.html from a report.json.")
    render.add_argument("report", type=Path, help="the run's report.json")
    render.add_argument("--out", type=Path, metavar="DIR",
                        help="where to write them (default: beside the report.json)")
    render.add_argument("--compare", type=Path, metavar="OLD.json",
                        help="show deltas against this older report.json")
    add_compare_arguments(sub.add_parser(
        "compare", help="fail when percentiles regress against a baseline"))
    return parser


def run(args: argparse.Namespace) -> int:
    """Run parsed ``report`` arguments; returns the exit status."""
    if args.report_command == "compare":
        return run_compare(args)
    from pytest_resilience.report._files import write_rendered

    try:
        report = load_report(args.report)
        baseline = load_report(args.compare) if args.compare else None
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"render: {exc}\n")
        return EXIT_USAGE
    out = args.out if args.out is not None else args.report.parent
    for path in write_rendered(report, out, baseline=baseline):
        sys.stdout.write(f"{path}\n")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """Run parsed ``compare`` arguments; returns the exit status."""
    try:
        rules = [Rule.parse(text) for text in args.fail]
        floor = Budget.parse(f"max<{args.noise_floor}").threshold
        baselines = [load_report(path) for path in args.baseline]
        currents = [load_report(path) for path in args.current]
        regressions, notes = compare_reports(baselines, currents, rules, noise_floor=floor)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"compare: {exc}\n")
        return EXIT_USAGE
    for note in notes:
        sys.stdout.write(f"note: {note}\n")
    runs = f"{len(baselines)} baseline / {len(currents)} current run(s), medians"
    if not common_operations(baselines, currents):
        sys.stdout.write(f"nothing compared: no operation is in both sides ({runs}).\n")
        return EXIT_REGRESSION
    for regression in regressions:
        sys.stdout.write(f"REGRESSION {regression.describe()}\n")
    if regressions:
        sys.stdout.write(f"{len(regressions)} regression(s) ({runs}).\n")
        return EXIT_REGRESSION
    sys.stdout.write(f"no regression ({runs}).\n")
    return 0


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """``report`` on its own; returns the exit status (0 for ``--help``, 2 bad usage)."""
    parser = build(argparse.ArgumentParser(prog=prog))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 0 for --help and 2 for bad usage
        return int(exc.code or 0)
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
