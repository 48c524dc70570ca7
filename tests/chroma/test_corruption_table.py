"""Every corruption mode: what chromadb does alone, what verify_store says, and recovery.

Each mode damages a copy of a sealed, backed-up golden store. ``verify_store`` must
detect every mode, and restoring the last backup must bring back every record. The
modes run in parallel child processes once per module; each test checks one mode. Set
``RESILIENCE_CHROMA_TABLE=<file>`` to write the README table of this run.

Besides every mode at seed 1 there is one targeted case: zeroing the page of chroma's
``migrations`` table, which makes chromadb panic (``PanicException``).
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from faults.chroma import MODES, OUTCOMES, Outcome, corrupt, judge
from pytest_resilience.chroma._backup import BackupManager
from pytest_resilience.chroma._files import collection_counts
from pytest_resilience.chroma._integrity import IntegrityReport, verify_store

pytest.importorskip("chromadb", reason="Chroma tests need chromadb")


#: Row label -> (mode, corrupt() keywords).
CASES: dict[str, tuple[str, dict[str, str]]] = {
    **{mode: (mode, {}) for mode in MODES},
    "sqlite-zero-page(table=migrations)": ("sqlite-zero-page", {"table": "migrations"}),
}


@dataclass
class Row:
    files: tuple[str, ...]
    damage: str
    outcome: Outcome
    report: IntegrityReport
    restored_counts: dict[str, int]
    clean_after_restore: bool


def _run_mode(golden: Path, manager: BackupManager, info, baseline, root: Path,  # noqa: PLR0917
              label: str) -> Row:
    mode, options = CASES[label]
    work = root / label / "store"
    shutil.copytree(golden, work)
    damage = corrupt(work, mode, seed=1, **options)
    report = verify_store(work, timeout=60)
    assert report.probe is not None
    outcome = judge(report.probe, baseline)
    manager.restore(info, target=work)
    return Row(damage.files, damage.detail, outcome, report,
               collection_counts(work / "chroma.sqlite3"),
               verify_store(work, probe=False).ok)


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Row]:
    from pytest_resilience.chroma._store import make_store

    store = make_store(tmp_path_factory.mktemp("golden") / "store")
    manager = BackupManager(store.path, format="tar.zst")
    info = manager.create()
    seal = sorted((store.path / ".resilience" / "seals").glob("*.json"))[-1]
    baseline = json.loads(seal.read_text())["probe"]
    root = tmp_path_factory.mktemp("modes")
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {m: pool.submit(_run_mode, store.path, manager, info, baseline, root, m)
                   for m in CASES}
        found = {m: f.result() for m, f in futures.items()}
    target = os.environ.get("RESILIENCE_CHROMA_TABLE")
    if target:
        Path(target).write_text(render_table(found), encoding="utf-8")
    return found


def render_table(rows: dict[str, Row]) -> str:
    """The README table: one line per mode."""
    lines = ["| mode | damage | chromadb on its own | verify_store finds | "
             "restore last backup |", "|---|---|---|---|---|"]
    for mode, row in rows.items():
        seg = row.files[0].split("/")[0] + "/" if "/" in row.files[0] else ""
        what = str(row.outcome) + (f": {row.outcome.detail[:60]}…" if row.outcome.detail
                                   else "")
        checks = ", ".join(sorted({f.check for f in row.report.findings}))
        total = sum(row.restored_counts.values())
        lines.append(f"| `{mode}` | {row.damage.replace(seg, '')} | {what.replace('|', '/')} "
                     f"| {checks} | {total} of 300 records |")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("mode", list(CASES))
def test_mode_is_detected_and_recovered(rows, mode) -> None:
    row = rows[mode]
    assert row.outcome.kind in OUTCOMES
    assert not row.report.ok, f"{mode} was not detected"
    named = {f.target.split("/")[-1] for f in row.report.findings}
    assert named & ({Path(f).name for f in row.files} | {Path(row.files[0]).parent.name})
    assert row.restored_counts == {"memories": 300}  # zero records lost
    assert row.clean_after_restore  # byte-identical to the verified backup


def test_the_table_covers_every_outcome_seen(rows) -> None:
    kinds = {row.outcome.kind for row in rows.values()}
    # chromadb alone misses some, fails cleanly on others, panics or segfaults on others
    assert {"ok", "clean_error", "silent_divergence", "panic", "crash"} <= kinds
    assert rows["data_level0-graph"].outcome.signal == "SIGSEGV"
    assert rows["sqlite-zero-page(table=migrations)"].outcome.kind == "panic"
    assert render_table(rows).count("\n") == len(CASES) + 2
