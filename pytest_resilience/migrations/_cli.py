"""``python -m pytest_resilience migrate status|up|down|create|verify|crash``.

Exit status: 0 success; 1 ``verify`` found drift or ``crash`` found a migration that is
not crash-safe; 2 bad usage; 3 the runner refused or a migration failed (drift, a
dependency cycle, a statement no transaction can hold, a failing statement).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_resilience.migrations._errors import MigrationError
from pytest_resilience.migrations._files import load_migrations
from pytest_resilience.migrations._runner import Migrator

__all__ = ["main", "register"]

PROG = "python -m pytest_resilience migrate"
EXIT_FOUND, EXIT_USAGE, EXIT_REFUSED = 1, 2, 3


def _common(p: argparse.ArgumentParser, *, db: bool = True) -> None:
    p.add_argument("--dir", default="migrations", type=Path,
                   help="the migrations directory (default: ./migrations)")
    if db:
        p.add_argument("--db", required=True,
                       help="a SQLite file, or a postgresql:// URL (needs psycopg)")
        p.add_argument("--table", default="resilience_migrations",
                       help="the history table (default: resilience_migrations)")
    p.add_argument("--json", action="store_true", help="print JSON")


def build(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``migrate`` subcommands to ``parser``."""
    parser.description = ("Apply, roll back and check versioned SQL migrations "
                          "(NNNN_name.up.sql / NNNN_name.down.sql).")
    parser.epilog = ("exit status: 0 ok, 1 verify found drift or crash found an unsafe "
                     "migration, 2 bad usage, 3 refused or failed")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _common(sub.add_parser("status", help="list applied and pending migrations"))
    up = sub.add_parser("up", help="apply pending migrations")
    _common(up)
    up.add_argument("--to", help="stop after this version (default: all)")
    up.add_argument("--dry-run", action="store_true", help="print the plan and SQL only")
    down = sub.add_parser("down", help="roll back migrations")
    _common(down)
    down.add_argument("--to", help="keep this version and those before it; 'base': roll "
                                   "back all (default: the last one only)")
    down.add_argument("--dry-run", action="store_true", help="print the plan and SQL only")
    _common(sub.add_parser("verify", help="compare applied checksums with the files "
                                          "(exit 1 on drift)"))
    create = sub.add_parser("create", help="write the next NNNN_name.up.sql/.down.sql pair")
    _common(create, db=False)
    create.add_argument("name", help="what the migration does, e.g. add_email")
    create.add_argument("--depends", action="append", default=[], metavar="VERSION",
                        help="a version it must come after (repeatable)")
    create.add_argument("--non-transactional", action="store_true",
                        help="declare '-- transactional: false' (for VACUUM and the like)")
    crash = sub.add_parser("crash", help="crash every migration before every statement on "
                                         "temp copies (exit 1 if one is not crash-safe)")
    _common(crash, db=False)
    crash.add_argument("--kill-sample", type=int, default=2,
                       help="points per migration also run as a SIGKILLed process")
    crash.add_argument("--no-round-trip", action="store_true", help="skip up -> down -> up")
    return parser


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``migrate`` to another CLI's subparsers; dispatch the result with ``run(args)``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "migrate", help="versioned SQL migrations and their crash tests")
    return build(parser)


@contextmanager
def _connect(db: str) -> Iterator[Any]:
    if re.match(r"^postgres(ql)?://", db):
        import psycopg

        conn: Any = psycopg.connect(db, autocommit=True)
    else:
        import sqlite3

        conn = sqlite3.connect(db, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    sys.stdout.write((json.dumps(data, indent=2) if args.json else text) + "\n")


def run(args: argparse.Namespace) -> int:
    """Run parsed ``migrate`` arguments; returns the exit status."""
    try:
        return _run(args)
    except MigrationError as exc:
        _out(args, {"error": str(exc)}, f"error: {exc}")
        return EXIT_REFUSED


def _run(args: argparse.Namespace) -> int:
    if args.command == "create":
        return _create(args)
    if args.command == "crash":
        from pytest_resilience.migrations._crash import explore_crashes

        report = explore_crashes(args.dir, kill_sample=args.kill_sample,
                                 round_trip=not args.no_round_trip)
        _out(args, {"crash_safe": report.crash_safe, "points": report.points,
                    "unsafe": report.unsafe, "findings": [str(f) for f in report.findings]},
             report.explain())
        return 0 if report.crash_safe else EXIT_FOUND
    with _connect(args.db) as conn:
        migrator = Migrator(conn, load_migrations(args.dir), table=args.table, name="cli")
        if args.command == "status":
            status = migrator.status()
            _out(args, {"current": status.current,
                        "migrations": [{"version": e.version, "name": e.name, "state": e.state,
                                        "applied_at": e.applied.applied_at if e.applied else None}
                                       for e in status.entries]}, str(status))
            return 0
        if args.command == "verify":
            drifts = migrator.verify()
            _out(args, {"ok": not drifts, "drift": [str(d) for d in drifts]},
                 "\n".join(map(str, drifts)) or "ok: every applied migration matches its file")
            return EXIT_FOUND if drifts else 0
        run_ = migrator.upgrade if args.command == "up" else migrator.downgrade
        plan = run_(args.to, dry_run=args.dry_run)
        verb = "would run" if args.dry_run else "ran"
        text = str(plan) if args.dry_run else (
            f"{verb} {plan.direction}: {', '.join(plan.versions) or 'nothing to do'}")
        _out(args, {"direction": plan.direction, "versions": plan.versions,
                    "dry_run": args.dry_run, "sql": str(plan)}, text)
        return 0


def _create(args: argparse.Namespace) -> int:
    name = re.sub(r"[^A-Za-z0-9_\-]+", "_", args.name).strip("_")
    if not name:
        raise MigrationError(f"name {args.name!r} has no letter or digit; pass e.g. add_email.")
    directory: Path = args.dir
    directory.mkdir(parents=True, exist_ok=True)
    existing = load_migrations(directory)
    for dep in args.depends:
        existing.get(dep)
    width = max((len(v) for v in existing.versions), default=4)
    version = str(max((int(v) for v in existing.versions), default=0) + 1).zfill(width)
    header = [f"-- {version}_{name}"]
    if args.depends:
        header.append(f"-- depends: {', '.join(args.depends)}")
    if args.non_transactional:
        header.append("-- transactional: false")
    up = directory / f"{version}_{name}.up.sql"
    down = directory / f"{version}_{name}.down.sql"
    up.write_text("\n".join(header) + "\n\n", encoding="utf-8")
    down.write_text(f"-- undoes {version}_{name}\n\n", encoding="utf-8")
    _out(args, {"version": version, "up": str(up), "down": str(down)}, f"{up}\n{down}")
    return 0


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """``migrate`` on its own; returns the exit status (2 on bad usage)."""
    parser = build(argparse.ArgumentParser(prog=prog))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 0 for --help and 2 for bad usage
        return int(exc.code or 0)
    return run(args)
