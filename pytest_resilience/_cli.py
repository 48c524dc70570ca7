"""The ``pytest-resilience`` command (also ``python -m pytest_resilience``).

``pytest-resilience COMMAND [options]``; ``--help`` works on every level. Each command is
a module's ``main(argv, prog=...)``, imported only when it runs (``chroma`` needs the
``chroma`` extra, ``migrate`` with PostgreSQL needs psycopg).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

__all__ = ["COMMANDS", "main"]

PROG = "pytest-resilience"

#: command -> (module with ``main(argv, prog=)``, one line of help).
COMMANDS: dict[str, tuple[str, str]] = {
    "status": ("pytest_resilience._status", "memory, GPU and health status on one screen"),
    "report": ("pytest_resilience.report.__main__",
               "render a report.json again (render), or compare runs (compare)"),
    "compare": ("pytest_resilience._cli",
                "fail when percentiles regress against a baseline report.json"),
    "chroma": ("pytest_resilience.chroma.__main__",
               "back up, verify, restore and check Chroma stores"),
    "migrate": ("pytest_resilience.migrations._cli",
                "versioned SQL migrations and their crash tests"),
}


def _parser(prog: str) -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<9} {text}" for name, (_, text) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog=prog,
        description="pytest-resilience: reports, status, Chroma backups and migrations "
        "from the command line. The tests themselves run under `pytest -p resilience`.",
        epilog=f"commands:\n{listing}\n\n`{prog} COMMAND --help` explains each one.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND",
                        help="one of: " + ", ".join(COMMANDS))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's own options")
    return parser


def compare_main(argv: Sequence[str] | None = None, *, prog: str = f"{PROG} compare") -> int:
    """``compare``: the same as ``report compare``."""
    from pytest_resilience.report.__main__ import add_compare_arguments, run_compare

    parser = add_compare_arguments(argparse.ArgumentParser(prog=prog))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return run_compare(args)


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Run the command line; returns the exit status (2 on bad usage)."""
    parser = _parser(prog)
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:  # argparse exits 0 for --help and 2 for bad usage
        return int(exc.code or 0)
    command: Callable[..., int]
    if args.command == "compare":
        command = compare_main
    else:
        command = importlib.import_module(COMMANDS[args.command][0]).main
    try:
        return int(command(args.args, prog=f"{prog} {args.command}"))
    except SystemExit as exc:  # a command's argparse: 0 for --help, 2 for bad usage
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
