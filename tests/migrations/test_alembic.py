"""``AlembicSource`` details: revision order, statement hooks, refusals (the crash tests
of a whole alembic project live in ``example_suites/alembic_app``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("alembic", reason="needs the 'migrations' extra")

from pytest_resilience.migrations import (
    AlembicSource,
    CrashExplorer,
    MigrationError,
)

EXAMPLE = Path(__file__).parents[2] / "example_suites" / "alembic_app"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example project (its own versions directory to add revisions to)."""
    target = tmp_path / "app"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    return target


def test_revisions_come_base_to_head_with_readable_labels(project: Path) -> None:
    steps = AlembicSource(project / "alembic.ini").steps()
    assert [(s.version, s.previous) for s in steps] == [
        ("0001", None), ("0002", "0001"), ("0003", "0002"), ("0004", "0003")]
    assert steps[2].label == "0003_add_user_email_backfilled_from_the_name"


def test_every_statement_and_the_commit_are_crash_points(project: Path) -> None:
    with CrashExplorer(AlembicSource(project / "alembic.ini"), kill_sample=1,
                       round_trip=False) as explorer:
        report = explorer.explore("0002")
    assert report.crash_safe, report.explain()
    kinds = [p.kind for p in report.points]
    assert kinds[-2:] == ["record", "commit"]
    assert [p.sql.strip().split(" (")[0] for p in report.points
            if p.sql.strip().startswith("CREATE")] == [
        "CREATE TABLE orders", "CREATE INDEX ix_orders_user_id ON orders"]
    assert report.killed == 1
    assert report.points[-1].describe() == "COMMIT of revision 0002_create_orders"


def test_two_heads_are_refused(project: Path) -> None:
    (project / "migrations" / "versions" / "0005_branch.py").write_text(
        '"""a branch"""\nrevision = "0005"\ndown_revision = "0003"\nbranch_labels = None\n'
        "depends_on = None\n\n\ndef upgrade() -> None:\n    pass\n\n\n"
        "def downgrade() -> None:\n    pass\n")
    with pytest.raises(MigrationError) as info:
        AlembicSource(project / "alembic.ini")
    assert str(info.value) == (
        "alembic.ini: 2 heads ['0004', '0005']; the crash explorer needs one line of "
        "revisions. Merge them (alembic merge heads).")


def test_a_missing_config_is_named(tmp_path: Path) -> None:
    with pytest.raises(MigrationError) as info:
        AlembicSource(tmp_path / "alembic.ini")
    assert str(info.value) == f"alembic config {str(tmp_path / 'alembic.ini')!r} does not exist."
