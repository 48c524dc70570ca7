"""The newcomer's path: the README stays short and its tutorial is the tested example
suite; the docs build fails on a broken link, a page left out of the nav, or a
reference generator that no longer exists."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TUTORIAL = ROOT / "example_suites" / "tutorial"


def test_the_readme_is_a_short_path_in() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= 12 * 1024
    for heading in ("## Install it into your project", "## Five minutes: a small ML service "
                    "under faults", "## This repository: two commands", "## Documentation"):
        assert heading in text
    assert "bash scripts/examples.sh" in text
    assert "bash scripts/test.sh" in text
    links = re.findall(r"\]\(((?:docs/)[^)#]+)", text)
    assert links
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_every_readme_python_block_is_code_of_a_tested_example_suite() -> None:
    sources = "\n".join(p.read_text(encoding="utf-8") for p in sorted(TUTORIAL.glob("*.py")))
    your_code = "\n".join(p.read_text(encoding="utf-8")
                          for p in sorted((ROOT / "example_suites" / "your_code").glob("*.py")))
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    blocks = [b for b in blocks if "import pytest_resilience" not in b]
    assert len([b for b in blocks if b in sources]) == 5  # the tutorial
    assert [b for b in blocks if b not in sources and b not in your_code] == []


def test_the_readme_names_the_extras_pyproject_declares() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["optional-dependencies"]
    users = set(extras) - {"test", "dev"}
    named = set(re.findall(r"^\| `([a-z]+)` \|", README.read_text(encoding="utf-8"), re.M))
    assert named == users


def _docs_copy(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "mkdocs_hooks.py", tmp_path / "scripts")
    return tmp_path


def _build(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=root,
                          capture_output=True, text=True, check=False, timeout=300)


def test_the_docs_build_fails_on_a_broken_link_or_a_page_missing_from_the_nav(
    tmp_path: Path,
) -> None:
    pytest.importorskip("mkdocs", reason="the docs build needs MkDocs (the dev extra)")
    root = _docs_copy(tmp_path)
    with (root / "docs" / "reports.md").open("a", encoding="utf-8") as fh:
        fh.write("\nSee [the old page](sla-reports.md) and [a section](tutorial.md#nowhere).\n")
    (root / "docs" / "orphan.md").write_text("# Not in the nav\n", encoding="utf-8")
    done = _build(root)
    assert done.returncode != 0
    assert "Doc file 'reports.md' contains a link 'sla-reports.md', but the target is not " \
           "found among documentation files." in done.stderr
    assert "contains a link 'tutorial.md#nowhere', but the doc 'tutorial.md' does not " \
           "contain an anchor '#nowhere'" in done.stderr
    assert "The following pages exist in the docs directory, but are not included in the " \
           '"nav" configuration:\n  - orphan.md' in done.stderr
    assert "Aborted with 3 warnings in strict mode!" in done.stdout


def test_the_docs_build_fails_on_a_reference_generator_that_is_gone(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs build needs MkDocs (the dev extra)")
    root = _docs_copy(tmp_path)
    page = root / "docs" / "reference" / "events.md"
    page.write_text(page.read_text(encoding="utf-8").replace(
        "<!-- generated: events -->", "<!-- generated: event-table -->"), encoding="utf-8")
    done = _build(root)
    assert done.returncode != 0
    assert "<!-- generated: event-table -->: no such generator" in done.stderr
