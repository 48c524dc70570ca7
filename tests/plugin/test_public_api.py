"""The public surface: what loading the plugin imports, the layering rules of DESIGN.md,
and what the README, the docs and the example suites import."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    """Every module (and module.name) ``path`` imports, with each dotted prefix."""
    return {".".join(name.split(".")[:i + 1]) for _line, name in _imported(path, ROOT)
            for i in range(name.count(".") + 1)}


def _imported(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` of each import in ``path``, at any depth (lazy imports
    inside functions too): ``import a.b`` gives ``a.b``, ``from a import b, c`` gives
    ``a.b`` and ``a.c`` (a name or a submodule), relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = path.relative_to(root).with_suffix("").parts[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - node.level + 1]
                base = ".".join((*parent, *([base] if base else [])))
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _layer(module: str) -> str:
    """The layer of DESIGN.md a dotted module (or module.name) belongs to."""
    if module.split(".", maxsplit=1)[0] == "faults":
        return "faults"
    if module == "pytest_resilience.plugin" or module.startswith("pytest_resilience.plugin."):
        return "plugin"
    if module.startswith(("pytest_resilience._plugin", "pytest_resilience.chaos")):
        return "harness"
    if module.split(".", maxsplit=1)[0] == "pytest_resilience":
        return "component"
    return "other"


def _is_public_api(name: str) -> bool:
    """``name`` (``pkg.module.attr`` or ``pkg.module``) is a public module, or a name in
    the ``__all__`` of one."""
    if any(part.startswith("_") for part in name.split(".")):
        return False
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        module, _, attr = name.rpartition(".")
        return attr in getattr(importlib.import_module(module), "__all__", ())


def _layering_offences(path: Path, root: Path = ROOT) -> list[str]:
    rel = path.relative_to(root).as_posix()
    importer = _layer(".".join(path.relative_to(root).with_suffix("").parts))
    found = []
    for line, name in _imported(path, root):
        target = _layer(name)
        why = None
        if target == "plugin":
            why = "nothing imports the plugin module (pytest loads it by its entry point)"
        elif importer == "faults" and target == "harness":
            why = "faults never imports the harness"
        elif importer == "faults" and target == "component" and not _is_public_api(name):
            why = "faults imports only the public API of pytest_resilience"
        elif importer == "component" and target in ("faults", "harness"):
            why = f"a component never imports {'faults' if target == 'faults' else 'the harness'}"
        if why:
            found.append(f"{rel}:{line} imports {name}: {why}")
    return found


def test_the_layers_of_design_md_hold_in_both_directions() -> None:
    """DESIGN.md "Layers": ``faults`` imports only the public API of
    ``pytest_resilience`` and never the harness; a component (``pytest_resilience``
    except ``plugin.py``, ``_plugin/``, ``chaos/``) imports neither ``faults`` nor the
    harness; the harness may import both; nothing imports ``plugin.py``."""
    offences = [offence for pkg in ("pytest_resilience", "faults")
                for path in sorted((ROOT / pkg).rglob("*.py"))
                for offence in _layering_offences(path)]
    assert offences == []


@pytest.mark.parametrize(("path", "source", "expected"), [
    ("faults/_x.py", "from pytest_resilience._clock import Clock\n",
     "imports pytest_resilience._clock.Clock: faults imports only the public API"),
    ("faults/_x.py", "from pytest_resilience import _validate\n",
     "imports pytest_resilience._validate: faults imports only the public API"),
    ("faults/_x.py", "def f():\n    from pytest_resilience.chroma import copy_store\n",
     "imports pytest_resilience.chroma.copy_store: faults imports only the public API"),
    ("faults/_x.py", "from pytest_resilience.chaos import run_chaos\n",
     "imports pytest_resilience.chaos.run_chaos: faults never imports the harness"),
    ("pytest_resilience/_x.py", "import faults\n",
     "imports faults: a component never imports faults"),
    ("pytest_resilience/sla/_x.py", "from ..chaos import run_chaos\n",
     "imports pytest_resilience.chaos.run_chaos: a component never imports the harness"),
    ("pytest_resilience/_x.py", "from pytest_resilience._plugin import state\n",
     "imports pytest_resilience._plugin.state: a component never imports the harness"),
    ("pytest_resilience/chaos/_x.py", "import pytest_resilience.plugin\n",
     "imports pytest_resilience.plugin: nothing imports the plugin module"),
])
def test_the_layering_check_finds_each_kind_of_offence(tmp_path: Path, path: str,
                                                       source: str, expected: str) -> None:
    file = tmp_path / path
    file.parent.mkdir(parents=True)
    file.write_text(source, encoding="utf-8")
    [offence] = _layering_offences(file, tmp_path)
    assert offence.startswith(f"{path}:")
    assert expected in offence


def test_the_harness_may_import_both_packages(tmp_path: Path) -> None:
    file = tmp_path / "pytest_resilience" / "_plugin" / "x.py"
    file.parent.mkdir(parents=True)
    file.write_text("import faults\nfrom pytest_resilience._events import History\n"
                    "from pytest_resilience.chaos import run_chaos\n", encoding="utf-8")
    assert _layering_offences(file, tmp_path) == []


def test_faults_init_never_imports_heavy_family_modules() -> None:
    names = _imports(ROOT / "faults" / "__init__.py")
    assert not names & {"faults.strategies", "faults.cuda", "faults.chroma", "hypothesis"}


def test_both_packages_ship_py_typed() -> None:
    assert (ROOT / "pytest_resilience" / "py.typed").exists()
    assert (ROOT / "faults" / "py.typed").exists()


def test_every_public_object_has_exactly_one_public_spelling(
    public_modules: tuple[str, ...],
) -> None:
    spellings: dict[int, list[str]] = {}
    for name in public_modules:
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if isinstance(obj, int | str | float | tuple | frozenset) or obj is None:
                continue  # constants are values, not objects with an identity
            spellings.setdefault(id(obj), []).append(f"{name}.{attr}")
    twice = sorted(names for names in spellings.values() if len(names) > 1)
    assert twice == []


def test_public_modules_are_facades(public_modules: tuple[str, ...]) -> None:
    """A public module only re-exports: its names are defined in private modules."""
    offenders = []
    for name in public_modules:
        if name in {"pytest_resilience.plugin"}:
            continue  # the pytest entry point: hooks and fixtures, no exports
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            home = getattr(obj, "__module__", None)
            if isinstance(home, str) and home == name:
                offenders.append(f"{name}.{attr}")
    assert offenders == []


def _python_blocks(markdown: Path) -> Iterator[tuple[int, str]]:
    """``(line, code)`` of each fenced ``python``/``py`` block of a Markdown file."""
    lines = markdown.read_text(encoding="utf-8").splitlines()
    fence = None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if fence is None and stripped.startswith(("```", "~~~")):
            marker = stripped[:3]
            fence = (marker, stripped[3:].strip().split(" ")[0].lower(), number, [])
        elif fence is not None and stripped.startswith(fence[0]):
            if fence[1] in ("python", "py"):
                yield fence[2] + 1, textwrap.dedent("\n".join(fence[3]))
            fence = None
        elif fence is not None:
            fence[3].append(line)


def _private_imports(source: str, *, own: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """Imports naming a private module or name (a dotted part starting with ``_``, dunder
    modules such as ``__future__`` aside), except the top-level packages ``own``."""
    found = []
    for line, name in _imported_in(ast.parse(source)):
        if name.split(".")[0] in own:
            continue
        if any(part.startswith("_") and not part.endswith("__") for part in name.split(".")):
            found.append((line, name))
    return found


def _imported_in(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def test_the_readme_the_docs_and_the_examples_import_only_public_modules() -> None:
    """What users copy imports only ``pytest_resilience``, ``faults`` and their public
    subpackages: README.md's and every docs page's Python blocks (each must parse), and
    every file under ``example_suites/`` (whose own helper package is ``_support``)."""
    offenders = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        rel = page.relative_to(ROOT).as_posix()
        for start, code in _python_blocks(page):
            try:
                found = _private_imports(code)
            except SyntaxError as exc:
                offenders.append(f"{rel}:{start + (exc.lineno or 1) - 1}: does not parse "
                                 f"({exc.msg})")
                continue
            offenders.extend(f"{rel}:{start + line - 1}: {name}" for line, name in found)
    for path in sorted((ROOT / "example_suites").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        found = _private_imports(path.read_text(encoding="utf-8"), own=("_support",))
        offenders.extend(f"{rel}:{line}: {name}" for line, name in found)
    assert offenders == []


def test_the_import_check_reads_fenced_python_and_names_private_parts(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n```python\nfrom pytest_resilience import Retry\n"
                    "from pytest_resilience._retry import Retry as R\n```\n\n"
                    "```bash\nimport _nothing\n```\n\n"
                    "  ```py\n  import faults._plan\n  ```\n", encoding="utf-8")
    blocks = list(_python_blocks(page))
    assert [start for start, _code in blocks] == [4, 13]
    assert [_private_imports(code) for _start, code in blocks] == [
        [(2, "pytest_resilience._retry.Retry")], [(1, "faults._plan")]]
    assert _private_imports("from __future__ import annotations\n"
                            "from _support.loopback import request\n",
                            own=("_support",)) == []
