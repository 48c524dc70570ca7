"""The public surface: what loading the plugin imports, and the layering rules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import faults
import pytest_resilience

ROOT = Path(pytest_resilience.__file__).parent.parent
HEAVY = ("torch", "chromadb", "pynvml", "hypothesis", "numpy", "prometheus_client",
         "time_machine")


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, pytest_resilience.plugin, faults\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_loading_the_plugin_imports_no_component_and_not_faults() -> None:
    code = (
        "import sys, pytest_resilience.plugin\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pytest_resilience', 'faults'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == str(["pytest_resilience", "pytest_resilience._plugin",
                                      "pytest_resilience._plugin.calls",
                                      "pytest_resilience._plugin.state",
                                      "pytest_resilience.plugin"])


def test_root_exports_agree_with_their_type_checking_imports() -> None:
    tree = ast.parse((ROOT / "pytest_resilience" / "__init__.py").read_text(encoding="utf-8"))
    guarded = next(n for n in tree.body if isinstance(n, ast.If))
    imported = {a.name: node.module for node in guarded.body
                if isinstance(node, ast.ImportFrom) for a in node.names}
    module_of = pytest_resilience._MODULE_OF  # type: ignore[attr-defined]
    assert imported == module_of
    assert sorted(pytest_resilience.__all__) == sorted(module_of)
    assert set(pytest_resilience.__all__) <= set(dir(pytest_resilience))


def test_every_public_name_is_importable() -> None:
    for module in (pytest_resilience, faults):
        for name in module.__all__:
            assert getattr(module, name) is not None, name


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_components_never_import_faults_or_the_plugin() -> None:
    offenders = []
    for path in (ROOT / "pytest_resilience").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        harness = ("pytest_resilience/_plugin/", "pytest_resilience/chaos/")
        if rel.startswith(harness) or rel == "pytest_resilience/plugin.py":
            continue
        for name in _imports(path):
            if name == "faults" or name.startswith("faults.") or name.endswith(".plugin"):
                offenders.append(f"{rel}: {name}")
    assert offenders == []


def test_nothing_imports_the_plugin_module() -> None:
    offenders = [
        path.relative_to(ROOT).as_posix()
        for pkg in ("pytest_resilience", "faults")
        for path in (ROOT / pkg).rglob("*.py")
        if "pytest_resilience.plugin" in _imports(path)
    ]
    assert offenders == []


def test_faults_init_never_imports_heavy_family_modules() -> None:
    names = _imports(ROOT / "faults" / "__init__.py")
    assert not names & {"faults.strategies", "faults.cuda", "faults.chroma", "hypothesis"}


def test_both_packages_ship_py_typed() -> None:
    assert (ROOT / "pytest_resilience" / "py.typed").exists()
    assert (ROOT / "faults" / "py.typed").exists()


def _public_modules() -> list[str]:
    """Every importable module with no private (underscore) part, ``__main__`` aside."""
    found = []
    for pkg in ("pytest_resilience", "faults"):
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[-1] != "__main__" and not any(p.startswith("_") for p in parts):
                found.append(".".join(parts))
    return found


def test_every_public_object_has_exactly_one_public_spelling() -> None:
    import importlib

    spellings: dict[int, list[str]] = {}
    for name in _public_modules():
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if isinstance(obj, int | str | float | tuple | frozenset) or obj is None:
                continue  # constants are values, not objects with an identity
            spellings.setdefault(id(obj), []).append(f"{name}.{attr}")
    twice = sorted(names for names in spellings.values() if len(names) > 1)
    assert twice == []


def test_public_modules_are_facades() -> None:
    """A public module only re-exports: its names are defined in private modules."""
    import importlib

    offenders = []
    for name in _public_modules():
        if name in {"pytest_resilience.plugin"}:
            continue  # the pytest entry point: hooks and fixtures, no exports
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            home = getattr(obj, "__module__", None)
            if isinstance(home, str) and home == name:
                offenders.append(f"{name}.{attr}")
    assert offenders == []
