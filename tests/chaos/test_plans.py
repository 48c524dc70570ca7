"""One plan type: chaos plans are ``FaultPlan``s; old chaos-plan JSON loads; replaying a plan
needs no Hypothesis; families live apart from the strategies that generate them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import faults
from faults import Action, Fault, FaultPlan, Scheduled, Trigger
from faults.families import failpoints
from pytest_resilience.chaos import ChaosFailure, ChaosRun, replay

BLOCK_HYPOTHESIS = """
import sys

class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "hypothesis" or name.startswith("hypothesis."):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, _Block())
"""

#: A plan as a version-1 ``ChaosPlan`` wrote it: scheduled entries and shared decisions.
VERSION_1 = {
    "version": 1,
    "seed": 0,
    "faults": [{"failpoint": "db.read", "trigger": {"kind": "rate", "value": 0.5},
                "action": {"kind": "raise", "exception": "builtins:ConnectionError",
                           "args": []}}],
    "scheduled": [{"family": "clock", "kind": "skew", "at": 2.0, "params": {"seconds": -30.0}}],
    "decisions": [0.1, 0.9, 0.2],
}


def test_a_version_1_chaos_plan_loads_as_a_fault_plan() -> None:
    plan = FaultPlan.from_dict(VERSION_1)
    assert plan.faults == (Fault("db.read", Action.raise_(ConnectionError), Trigger.rate(0.5)),)
    assert plan.scheduled == (Scheduled("clock", "skew", 2.0, {"seconds": -30.0}),)
    assert plan.decisions == (0.1, 0.9, 0.2)
    assert plan.draws is None  # version 1: chaos.rng drew from the decisions too
    assert plan.to_dict()["version"] == 2
    assert FaultPlan.from_json(plan.to_json()) == plan


def test_a_version_1_plan_replays_its_shared_decisions() -> None:
    seen: list[tuple[bool, float]] = []

    def body(run: ChaosRun) -> None:
        for _ in range(2):
            try:
                faults.failpoint("db.read")
                seen.append((False, run.rng.random()))
            except ConnectionError:
                seen.append((True, run.rng.random()))

    replay(body, FaultPlan.from_dict(VERSION_1), families=[failpoints(["db.read"])])
    # coin 0.1 < 0.5 fires; the body's draw is the next decision (0.9); coin 0.2 fires
    assert seen[0] == (True, 0.9)
    assert seen[1][0] is True


def test_empty_parts_are_left_out_of_the_json() -> None:
    assert FaultPlan([Fault("x", Action.raise_())], seed=3).to_dict() == {
        "version": 2, "seed": 3,
        "faults": [{"failpoint": "x", "trigger": {"kind": "always"},
                    "action": {"kind": "raise"}}]}


def test_activating_a_plan_with_scheduled_faults_is_refused() -> None:
    plan = FaultPlan.from_dict(VERSION_1)
    with pytest.raises(ValueError) as info:
        faults.activate(plan)
    assert str(info.value) == (
        "the plan holds 1 scheduled fault(s) of family clock, which only a chaos run "
        "applies. Replay it on its chaos test (pytest TEST --resilience-replay=FILE, or "
        "pytest_resilience.chaos.replay(body, plan)), or arm plan.failpoint_plan().")
    with faults.activate(plan.failpoint_plan()) as active:
        assert active.plan.faults == plan.faults


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Scheduled("", "skew", 1.0),
     "family='' is not a family name. Pass a non-empty string."),
    (lambda: Scheduled("clock", "skew", -1.0),
     "at=-1.0 is not a time in seconds. Pass a finite number >= 0."),
    (lambda: FaultPlan.from_dict({"draws": ["x"]}),
     "draws='x' is not a draw. Pass the finite ints and floats chaos.rng returned."),
])
def test_bad_plan_parts_name_the_fix(build: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        build()  # type: ignore[operator]
    assert str(info.value) == message


def run_python(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env, check=False)


def test_replaying_a_plan_never_imports_hypothesis() -> None:
    code = BLOCK_HYPOTHESIS + textwrap.dedent("""
        import faults
        from faults import FaultPlan
        from faults.families import cuda_spikes, failpoints
        from pytest_resilience.chaos import ChaosFailure, replay

        plan = FaultPlan.from_json('''{PLAN}''')

        def body(run):
            run.clock.sleep(5.0)
            draw = run.rng.randrange(10)
            faults.failpoint("db.read")

        try:
            replay(body, plan, families=[failpoints(["db.read"]), cuda_spikes(total="1GiB")])
        except ChaosFailure as failure:
            print("failed:", type(failure.error).__name__, len(failure.history))
        print("hypothesis" in sys.modules)
    """).replace("{PLAN}", FaultPlan(
        [Fault("db.read", Action.raise_(ConnectionError))],
        scheduled=[Scheduled("clock", "jump", 1.0, {"seconds": 5.0}),
                   Scheduled("cuda", "spike", 2.0, {"device": 0, "bytes": 2**20,
                                                    "duration": 1.0})],
        decisions=[0.5], draws=[7]).to_json())
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[:2] == ["failed:", "ConnectionError"]
    assert int(lines[2]) > 5
    assert lines[-1] == "False"


def test_the_replay_option_runs_without_hypothesis(tmp_path: Path) -> None:
    (tmp_path / "test_replayed.py").write_text(textwrap.dedent("""
        import pytest
        import faults
        from faults import Action

        @pytest.mark.chaos(failpoints={"db.read": [Action.raise_(ConnectionError)]},
                           families=["clock"])
        def test_reads(chaos):
            chaos.clock.sleep(3.0)
            faults.failpoint("db.read")
    """))
    plan = FaultPlan([Fault("db.read", Action.raise_(ConnectionError))],
                     scheduled=[Scheduled("clock", "skew", 1.0, {"seconds": -5.0})])
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"test": "test_replayed.py::test_reads", **plan.to_dict()}))
    code = BLOCK_HYPOTHESIS + textwrap.dedent(f"""
        import pytest
        code = pytest.main(["-p", "resilience", "-p", "no:cacheprovider", "-q",
                            "test_replayed.py", "--resilience-replay={plan_file}"])
        print("hypothesis" in sys.modules, int(code))
    """)
    out = run_python(code, cwd=tmp_path)
    assert "chaos: after 1 plan(s), the body raised ConnectionError" in out.stdout, out.stderr
    assert out.stdout.split()[-2:] == ["False", "1"]


def test_families_import_no_hypothesis(tmp_path: Path) -> None:
    code = BLOCK_HYPOTHESIS + textwrap.dedent(f"""
        from faults.families import (chroma_corruptions, clock_skews, cuda_spikes,
                                     failpoints, memory_pressures, network_toxics,
                                     resolve_families)
        families = resolve_families([failpoints(["a"]), clock_skews(target="wall"),
                                     memory_pressures(), cuda_spikes(),
                                     chroma_corruptions({str(tmp_path)!r}),
                                     network_toxics(lambda: None), "clock", "cuda"])
        print(len(families), "hypothesis" in sys.modules)
    """)
    out = run_python(code)
    assert out.stdout.split() == ["8", "False"], out.stderr


def test_a_failure_found_by_the_runner_replays_from_its_json() -> None:
    from pytest_resilience.chaos import run_chaos

    def body(run: ChaosRun) -> None:
        picks = [run.rng.randrange(100) for _ in range(3)]
        run.clock.sleep(1.0)
        if sum(picks) > 150:
            raise AssertionError(f"picked {picks}")

    with pytest.raises(ChaosFailure) as info:
        run_chaos(body, families=["clock"], seed=2, max_examples=200)
    plan = FaultPlan.from_json(info.value.plan.to_json())
    assert plan.draws is not None
    assert len(plan.draws) == 3
    with pytest.raises(ChaosFailure) as again:
        replay(body, plan)
    assert str(again.value.error) == str(info.value.error)


SCHEMA = Path(faults.__file__).with_name("fault-plan.schema.json")


def validator() -> object:
    jsonschema = pytest.importorskip("jsonschema", reason="the schema test needs jsonschema")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_plan_shape_validates_against_the_shipped_schema() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from faults.families import clock_skews, cuda_spikes
    from faults.strategies import fault_plans

    check = validator()
    sites = failpoints({"db": [Action.raise_(ConnectionError("x")), Action.returns({"a": 1}),
                               Action.delay(0.5)]}, max_delay=0.5)

    @settings(max_examples=60, deadline=None)
    @given(fault_plans([sites, clock_skews(target="wall"), cuda_spikes()], max_faults=4),
           st.lists(st.floats(0, 1, exclude_max=True), max_size=3),
           st.lists(st.integers(0, 99), max_size=3))
    def validates(plan: FaultPlan, decisions: list[float], draws: list[int]) -> None:
        data = plan.with_draws(decisions, draws).to_dict()
        check.validate({"test": "t.py::test_x", **data})  # type: ignore[attr-defined]

    validates()
    check.validate(VERSION_1)  # type: ignore[attr-defined]
    check.validate(FaultPlan.from_dict(VERSION_1).to_dict())  # type: ignore[attr-defined]


def test_the_schema_refuses_what_from_dict_refuses() -> None:
    check = validator()
    bad = {"version": 2, "faults": [{"failpoint": "db", "action": {"kind": "raise"},
                                     "trigger": {"kind": "nth", "value": 0}}]}
    assert not check.is_valid(bad)  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        FaultPlan.from_dict(bad)
