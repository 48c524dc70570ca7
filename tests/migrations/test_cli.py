"""``python -m pytest_resilience migrate ...``: every subcommand and its exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_resilience.__main__ import main as top_main
from pytest_resilience.migrations._cli import main

WriteSet = Callable[..., Path]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_up_status_down_and_verify(write_set: WriteSet, good_files: dict[str, str],
                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d, db = str(write_set(good_files)), str(tmp_path / "app.db")
    assert _run(capsys, "up", "--dir", d, "--db", db, "--to", "0002") == (
        0, "ran up: 0001, 0002\n")
    code, out = _run(capsys, "status", "--dir", d, "--db", db, "--json")
    data = json.loads(out)
    assert (code, data["current"]) == (0, "0002")
    assert [m["state"] for m in data["migrations"]] == ["applied", "applied", "pending"]
    code, out = _run(capsys, "up", "--dir", d, "--db", db, "--dry-run")
    assert code == 0
    assert out.startswith("-- upgrade plan: 1 migration(s)\n-- 0003_audit.up.sql")
    assert _run(capsys, "verify", "--dir", d, "--db", db) == (
        0, "ok: every applied migration matches its file\n")
    assert _run(capsys, "down", "--dir", d, "--db", db, "--to", "base") == (
        0, "ran down: 0002, 0001\n")


def test_drift_exits_1_on_verify_and_3_on_up(write_set: WriteSet, good_files: dict[str, str],
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    directory = write_set(good_files)
    d, db = str(directory), str(tmp_path / "app.db")
    assert _run(capsys, "up", "--dir", d, "--db", db)[0] == 0
    (directory / "0002_create_orders.up.sql").write_text("SELECT 2;")
    code, out = _run(capsys, "verify", "--dir", d, "--db", db)
    assert code == 1
    assert out.startswith("0002_create_orders.up.sql was applied with checksum ")
    code, out = _run(capsys, "up", "--dir", d, "--db", db, "--json")
    assert code == 3
    assert json.loads(out)["error"].startswith("refusing to run: 0002_create_orders.up.sql")


def test_create_writes_the_next_pair(write_set: WriteSet, good_files: dict[str, str],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    directory = write_set(good_files)
    code, _ = _run(capsys, "create", "add index!", "--dir", str(directory), "--depends", "0002",
                   "--non-transactional")
    assert code == 0
    up = directory / "0004_add_index.up.sql"
    assert up.read_text() == ("-- 0004_add_index\n-- depends: 0002\n-- transactional: false"
                              "\n\n")
    assert (directory / "0004_add_index.down.sql").exists()
    code, out = _run(capsys, "create", "x", "--dir", str(directory), "--depends", "0042")
    assert code == 3
    assert out == ("error: no migration '0042'; known versions: ['0001', '0002', '0003', "
                   "'0004'].\n")


def test_create_starts_an_empty_directory_at_0001(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "create", "init", "--dir", str(tmp_path / "m"), "--json")
    assert (code, json.loads(out)["version"]) == (0, "0001")


def test_crash_exits_1_for_a_non_atomic_set(write_set: WriteSet, rebuild_files: dict[str, str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "crash", "--dir", str(write_set(rebuild_files)),
                     "--kill-sample", "0", "--json")
    data = json.loads(out)
    assert (code, data["crash_safe"], data["unsafe"]) == (1, False, ["0004_rebuild_users"])


@pytest.mark.parametrize("argv", [
    [], ["status"], ["up"], ["down"], ["verify"], ["create"], ["crash"],
])
def test_help_works_at_every_level(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: python -m pytest_resilience migrate")


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up"]) == 2  # --db is required
    assert "the following arguments are required: --db" in capsys.readouterr().err
    assert main(["launch"]) == 2


def test_the_package_entry_point_dispatches_migrate(tmp_path: Path) -> None:
    assert top_main(["migrate", "create", "init", "--dir", str(tmp_path)]) == 0
    out = subprocess.run([sys.executable, "-m", "pytest_resilience", "migrate", "status",
                          "--dir", str(tmp_path), "--db", str(tmp_path / "x.db")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert (out.returncode, out.stdout) == (0, "current: base\npending  0001_init\n")
