"""The ``python -m pytest_resilience.chroma`` CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_resilience.chroma.__main__ import main

pytest.importorskip("chromadb", reason="Chroma tests need chromadb")


def _json(capsys: pytest.CaptureFixture[str]):
    return json.loads(capsys.readouterr().out)


def test_backup_list_verify_restore_prune(chroma_store, capsys) -> None:
    store = str(chroma_store.path)
    assert main(["backup", store, "--format", "tar.gz", "--json"]) == 0
    made = _json(capsys)
    assert made["counts"] == {"memories": 300}
    assert main(["backup", store, "--format", "dir", "--json"]) == 0
    second = _json(capsys)
    assert main(["list", store, "--json"]) == 0
    assert [b["name"] for b in _json(capsys)] == [made["name"], second["name"]]
    assert main(["verify", store, "--backup", made["name"], "--json"]) == 0
    assert _json(capsys)["ok"] is True
    assert main(["restore", store, "--dry-run", "--json"]) == 0
    assert _json(capsys)["dry_run"] is True
    assert main(["prune", store, "--keep", "1", "--json"]) == 0
    assert _json(capsys) == [made["name"]]
    assert main(["check", store, "--no-probe", "--json"]) == 0
    assert _json(capsys)["ok"] is True


def test_errors_have_exit_codes(chroma_store, tmp_path, capsys) -> None:
    assert main(["restore", str(tmp_path), "--json"]) == 3
    assert _json(capsys)["error"].startswith("No backups of")
    (chroma_store.path / "chroma.sqlite3").write_bytes(b"")
    assert main(["check", str(chroma_store.path), "--no-probe"]) == 1
    assert "[seal] chroma.sqlite3" in capsys.readouterr().out


def test_module_entry_point_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "pytest_resilience.chroma", "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0
    assert "backup" in done.stdout
    assert "restore" in done.stdout
