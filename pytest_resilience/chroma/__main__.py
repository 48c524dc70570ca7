"""``python -m pytest_resilience.chroma backup|list|verify|restore|prune|check|seal``.

Exit status: 0 success, 1 a check found problems, 2 bad usage (or a restore that was
not confirmed), 3 a backup error.

A restore asks before it replaces an existing store (``--yes`` answers for scripts; with
no terminal to ask, it refuses), and writes only to the store it names unless
``--allow-other-target`` lets ``--target`` point elsewhere. Keys are read from a file
or a named environment variable, never from the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_resilience._errors import BackupError, CorruptionDetected
from pytest_resilience.chroma._backup import FORMATS, BackupManager
from pytest_resilience.chroma._integrity import seal_store, verify_store


def _parser(prog: str = "python -m pytest_resilience.chroma") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Back up, verify and restore "
                                     "Chroma stores.", epilog="exit status: 0 success, 1 a "
                                     "check found problems, 2 bad usage, 3 a backup error")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("store", help="the directory given to PersistentClient(path=...)")
        p.add_argument("--json", action="store_true", help="print JSON")
        if name not in {"check", "seal"}:
            p.add_argument("--dir", help="backup directory (default: <store>.backups)")
            p.add_argument("--key-file", help="file holding the HMAC signing key")
            p.add_argument("--key-env", help="environment variable holding the signing key")
            p.add_argument("--encrypt-key-file", help="file holding the encryption key")
            p.add_argument("--encrypt-key-env",
                           help="environment variable holding the encryption key")
        return p

    command("backup", "create a backup").add_argument(
        "--format", choices=[*FORMATS, "auto"], default="auto")
    command("list", "list backups, oldest first")
    verify = command("verify", "verify a backup (default: the newest)")
    verify.add_argument("--backup", help="backup name")
    restore = command("restore", "restore a backup (default: the newest)")
    restore.add_argument("--backup", help="backup name")
    restore.add_argument("--target", help="restore here instead of into the store")
    restore.add_argument("--dry-run", action="store_true", help="verify, do not swap")
    restore.add_argument("--yes", action="store_true",
                         help="replace an existing store without asking")
    restore.add_argument("--allow-other-target", action="store_true",
                         help="let --target be a directory other than the store")
    prune = command("prune", "remove old backups (the newest is always kept)")
    prune.add_argument("--keep", type=int, help="keep this many newest backups")
    prune.add_argument("--max-age", type=float, help="remove backups older than SECONDS")
    prune.add_argument("--dry-run", action="store_true", help="list, do not remove")
    check = command("check", "verify the store itself (verify_store)")
    check.add_argument("--no-probe", action="store_true", help="skip the chromadb probe")
    command("seal", "record the store's checksums and answers (seal_store)")
    return parser


def _emit(data: Any, as_json: bool, text: str) -> None:
    sys.stdout.write((json.dumps(data, indent=2, sort_keys=True) if as_json else text) + "\n")


def main(argv: Sequence[str] | None = None, *,
         prog: str = "python -m pytest_resilience.chroma") -> int:
    """Run the CLI; returns the exit status (0 for ``--help``, 2 bad usage)."""
    try:
        args = _parser(prog).parse_args(argv)
    except SystemExit as exc:  # argparse exits 0 for --help and 2 for bad usage
        return int(exc.code or 0)
    try:
        return _run(args)
    except BackupError as exc:
        _emit({"error": str(exc)}, args.json, f"error: {exc}")
        return 3
    except (CorruptionDetected, ValueError) as exc:
        _emit({"error": str(exc)}, args.json, f"error: {exc}")
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "check":
        report = verify_store(args.store, probe=not args.no_probe)
        findings = [str(f) for f in report.findings]
        data = {"ok": report.ok, "findings": findings, "notes": list(report.notes),
                "counts": report.counts}
        _emit(data, args.json, "ok" if report.ok else "\n".join(findings))
        return 0 if report.ok else 1
    if args.command == "seal":
        path = seal_store(args.store)
        _emit({"seal": str(path)}, args.json, f"sealed: {path}")
        return 0
    fmt = getattr(args, "format", "auto")
    manager = BackupManager(args.store, directory=args.dir, format=fmt,
                            key_file=args.key_file, key_env=args.key_env,
                            encrypt_to=_encryption_key(args))
    if args.command == "backup":
        info = manager.create()
        _emit(info.to_dict(), args.json, f"{info.name} -> {info.path}")
    elif args.command == "list":
        backups = manager.list()
        _emit([b.to_dict() for b in backups], args.json,
              "\n".join(f"{b.name}  {b.format}  {b.counts}" for b in backups) or "no backups")
    elif args.command == "verify":
        result = manager.verify(args.backup)
        _emit({"backup": result.backup, "ok": result.ok, "findings": list(result.findings),
               "authenticated": result.authenticated, "notes": list(result.notes)},
              args.json, "\n".join(["ok" if result.ok else "\n".join(result.findings),
                                    *(f"note: {n}" for n in result.notes)]))
        return 0 if result.ok else 1
    elif args.command == "restore":
        refusal = _restore_refusal(args)
        if refusal is not None:
            _emit({"error": refusal}, args.json, f"error: {refusal}")
            return 2
        done = manager.restore(args.backup, target=args.target, dry_run=args.dry_run)
        _emit({"backup": done.backup, "target": done.target, "dry_run": done.dry_run,
               "counts": done.counts}, args.json,
              f"{'verified' if done.dry_run else 'restored'} {done.backup} -> {done.target}")
    else:
        removed = manager.prune(keep=args.keep, max_age=args.max_age, dry_run=args.dry_run)
        _emit([b.name for b in removed], args.json,
              "\n".join(b.name for b in removed) or "nothing to prune")
    return 0


def _encryption_key(args: argparse.Namespace) -> bytes | None:
    if args.encrypt_key_file and args.encrypt_key_env:
        raise ValueError("--encrypt-key-file and --encrypt-key-env were both given. Pass one.")
    if args.encrypt_key_file:
        try:
            return Path(args.encrypt_key_file).read_bytes().strip()
        except OSError as exc:
            raise ValueError(f"--encrypt-key-file={args.encrypt_key_file} cannot be read "
                             f"({exc.strerror}).") from None
    if args.encrypt_key_env:
        value = os.environ.get(args.encrypt_key_env)
        if value is None:
            raise ValueError(f"--encrypt-key-env={args.encrypt_key_env} names no environment "
                             "variable that is set.")
        return value.strip().encode()
    return None


def _restore_refusal(args: argparse.Namespace) -> str | None:
    """Why this restore may not go ahead, or ``None``: it needs intent."""
    store = Path(args.store)
    target = Path(args.target) if args.target else store
    if os.path.realpath(target) != os.path.realpath(store) and not args.allow_other_target:
        return (f"--target {target} is not the store {store}. A restore writes only to the "
                "store it names; pass --allow-other-target to restore elsewhere.")
    if args.dry_run or args.yes or not target.exists() or not any(target.iterdir()):
        return None
    question = (f"Restore a backup over {target}? Its current contents will be replaced. "
                "[y/N] ")
    if not sys.stdin.isatty():
        return (f"{target} exists and would be replaced, and there is no terminal to ask. "
                "Pass --yes to confirm.")
    sys.stderr.write(question)
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return None if answer in {"y", "yes"} else f"not confirmed; {target} was not touched."


if __name__ == "__main__":
    raise SystemExit(main())
