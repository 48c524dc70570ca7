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


class _Terminal:
    """A stdin that is a terminal and answers ``answer``."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.answer


def test_restore_over_a_store_needs_yes_without_a_terminal(chroma_store, capsys,
                                                           monkeypatch) -> None:
    store = str(chroma_store.path)
    assert main(["backup", store, "--format", "tar"]) == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", _Terminal(""))
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["restore", store, "--json"]) == 2
    assert _json(capsys)["error"] == (
        f"{store} exists and would be replaced, and there is no terminal to ask. Pass --yes "
        "to confirm.")
    assert main(["restore", store, "--yes", "--json"]) == 0
    assert _json(capsys)["target"] == store


@pytest.mark.parametrize(("answer", "code"), [("y\n", 0), ("\n", 2), ("no\n", 2)])
def test_restore_asks_on_a_terminal(chroma_store, capsys, monkeypatch, answer: str,
                                    code: int) -> None:
    store = str(chroma_store.path)
    assert main(["backup", store, "--format", "tar"]) == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", _Terminal(answer))
    assert main(["restore", store]) == code
    out, err = capsys.readouterr()
    assert err == (f"Restore a backup over {store}? Its current contents will be replaced. "
                   "[y/N] ")
    assert out == (f"error: not confirmed; {store} was not touched.\n" if code else
                   f"restored {out.split()[1]} -> {store}\n")


def test_restore_elsewhere_needs_allow_other_target(chroma_store, tmp_path, capsys) -> None:
    store = str(chroma_store.path)
    assert main(["backup", store, "--format", "tar"]) == 0
    capsys.readouterr()
    elsewhere = tmp_path / "elsewhere"
    assert main(["restore", store, "--target", str(elsewhere), "--json"]) == 2
    assert _json(capsys)["error"] == (
        f"--target {elsewhere} is not the store {store}. A restore writes only to the store "
        "it names; pass --allow-other-target to restore elsewhere.")
    assert not elsewhere.exists()
    assert main(["restore", store, "--target", str(elsewhere), "--allow-other-target",
                 "--json"]) == 0
    assert (elsewhere / "chroma.sqlite3").is_file()


def test_signed_and_encrypted_backups_from_the_command_line(chroma_store, tmp_path, capsys,
                                                            monkeypatch) -> None:
    pytest.importorskip("cryptography", reason="encrypted backups need the crypto extra")
    store = str(chroma_store.path)
    (tmp_path / "sign.key").write_text("s" * 32)
    monkeypatch.setenv("ENC_KEY", "e" * 32)
    keys = ["--key-file", str(tmp_path / "sign.key"), "--encrypt-key-env", "ENC_KEY"]
    assert main(["backup", store, "--format", "tar.zst", *keys, "--json"]) == 0
    made = _json(capsys)
    assert (made["signed"], made["encrypted"]) == (True, True)
    assert main(["verify", store, *keys, "--json"]) == 0
    assert _json(capsys)["ok"] is True
    assert main(["verify", store, "--json"]) == 1
    assert _json(capsys)["findings"] == [
        f"Backup {made['name']} is encrypted. Pass encrypt_to= with the key it was made with."]
