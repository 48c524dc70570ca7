"""Loading a fault plan never imports a module that is not imported or allowed.

Regression for issue 14, defect 8: ``FaultPlan.from_json`` imported any module a plan
named, so a plan file (read by the ``faults`` marker and ``--resilience-replay``) ran
code. Each test writes a module that records its own import in a marker file.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import faults
from faults import Action, FaultPlan

RESILIENCE = "-p resilience"


_serial = itertools.count()


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A module on ``sys.path`` that creates ``imported.txt`` when imported."""
    name = f"planted_{next(_serial)}"
    marker = tmp_path / "imported.txt"
    (tmp_path / f"{name}.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('ran')\n"
        "class Boom(Exception):\n    pass\n"
        "def hook():\n    return 'hooked'\n",
        encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, marker
    sys.modules.pop(name, None)


def _plan(module: str, *, what: str = "exception") -> str:
    action = ({"kind": "raise", "exception": f"{module}:Boom"} if what == "exception"
              else {"kind": "call", "fn": f"{module}:hook"})
    return json.dumps({"version": 1, "seed": 0,
                       "faults": [{"failpoint": "db.write", "action": action}]})


@pytest.mark.parametrize("what", ["exception", "fn"])
@pytest.mark.parametrize("load", [FaultPlan.from_json])
def test_a_plan_naming_an_unimported_module_is_refused_without_running_it(
        planted: tuple[str, Path], what: str, load: object) -> None:
    name, marker = planted
    with pytest.raises(ValueError) as info:
        load(_plan(name, what=what))  # type: ignore[operator]
    assert str(info.value) == (
        f"{what}='{name}:{'Boom' if what == 'exception' else 'hook'}' is not loadable: "
        f"module '{name}' is not imported, and loading a plan never imports code. Pass a "
        f"plan naming imported modules only, or allow it: --resilience-allow-module={name} "
        f"(ini resilience_allow_modules), faults.allow_plan_modules('{name}') or "
        f"from_json(..., allow_modules=['{name}']).")
    assert not marker.exists()
    assert name not in sys.modules


def test_allow_modules_lets_one_load_import_the_module(planted: tuple[str, Path]) -> None:
    name, marker = planted
    plan = FaultPlan.from_json(_plan(name, what="fn"), allow_modules=[name])
    assert marker.read_text() == "ran"
    assert plan.faults[0].action.fn is not None
    assert plan.faults[0].action.fn() == "hooked"


def test_allow_plan_modules_is_process_wide_until_undone(planted: tuple[str, Path]) -> None:
    name, marker = planted
    undo = faults.allow_plan_modules(name)
    try:
        exc = FaultPlan.from_json(_plan(name)).faults[0].action.exception
        assert isinstance(exc, type)
        assert exc.__name__ == "Boom"
    finally:
        undo()
    sys.modules.pop(name, None)
    marker.unlink()
    with pytest.raises(ValueError, match="is not imported"):
        FaultPlan.from_json(_plan(name))
    assert not marker.exists()


def test_a_package_allows_its_submodules(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "allowedpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "errors.py").write_text("class Boom(Exception):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        plan = FaultPlan.from_dict(
            {"faults": [{"failpoint": "x", "action": {"kind": "raise",
                                                      "exception": "allowedpkg.errors:Boom"}}]},
            allow_modules=["allowedpkg"])
        assert plan.faults[0].action.exception.__name__ == "Boom"  # type: ignore[union-attr]
    finally:
        for module in ("allowedpkg", "allowedpkg.errors"):
            sys.modules.pop(module, None)


def test_imported_modules_still_resolve_and_dunder_paths_do_not() -> None:
    plan = FaultPlan.from_json(_plan("builtins").replace("Boom", "ConnectionError"))
    assert plan.faults[0].action.exception is ConnectionError
    sneaky = {"kind": "call", "fn": "json:dumps.__globals__"}
    with pytest.raises(ValueError) as info:
        Action.from_dict(sneaky)
    assert str(info.value) == ("fn='json:dumps.__globals__' is not an importable name. Pass "
                               "a public module-level name.")


def test_the_faults_marker_refuses_a_plan_file_naming_an_unimported_module(
        pytester: pytest.Pytester, planted: tuple[str, Path]) -> None:
    name, marker = planted
    plan = pytester.path / "plan.json"
    plan.write_text(_plan(name), encoding="utf-8")
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.faults({str(plan)!r})
        def test_body(faults):
            pass
    """)
    result = pytester.runpytest(RESILIENCE)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*exception='{name}:Boom' is not loadable: module "
                                 f"'{name}' is not imported*"])
    assert not marker.exists()
