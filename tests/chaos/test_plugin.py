"""The ``chaos`` marker and ``--resilience-replay`` through pytester."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

BODY = '''
import pytest
import faults
from faults import Action

DB = {"db.read": [Action.raise_(ConnectionError)]}

def read(chaos, tries):
    for _ in range(tries):
        try:
            faults.failpoint("db.read")
            return
        except ConnectionError:
            chaos.clock.sleep(1.0)
    raise ConnectionError("gave up")
'''


def test_a_passing_chaos_test_runs_many_plans(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BODY + '''
@pytest.mark.chaos(failpoints=DB, max_examples=30, allow=[ConnectionError],
                   must_fire=["db.read"])
def test_reads(chaos, tmp_path):
    assert tmp_path.exists()
    read(chaos, 20)
''')
    result = pytester.runpytest("--resilience-seed=1")
    result.assert_outcomes(passed=1)
    match = re.search(r"chaos: (\d+) plans in 1 test", result.stdout.str())
    assert match is not None
    assert int(match.group(1)) >= 30


def failing(pytester: pytest.Pytester) -> Path:
    return pytester.makepyfile(BODY + '''
@pytest.mark.chaos(failpoints=DB, families=["clock"])
def test_reads(chaos):
    read(chaos, 3)
''')


def test_a_failure_prints_the_minimal_plan_and_the_replay_line(
        pytester: pytest.Pytester) -> None:
    failing(pytester)
    report = pytester.path / "report"
    result = pytester.runpytest("--resilience-seed=3", f"--resilience-report={report}")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "the body raised ConnectionError: gave up" in out
    assert "minimal fault plan (1 fault(s)):" in out
    assert '"failpoint": "db.read"' in out
    name = "test_a_failure_prints_the_minimal_plan_and_the_replay_line"
    plan_file = report / "chaos" / f"{name}.py_test_reads.json"
    assert f"replay: pytest 'test_a_failure_prints_the_minimal_plan_and_the_replay_line.py::" \
        f"test_reads' --resilience-replay={plan_file}" in out
    assert "--resilience-seed=3)" in out
    saved = json.loads(plan_file.read_text())
    assert saved["test"].endswith("::test_reads")
    assert len(saved["faults"]) == 1


def test_the_replay_option_repeats_the_failure_exactly(pytester: pytest.Pytester) -> None:
    failing(pytester)
    report = pytester.path / "report"
    first = pytester.runpytest("--resilience-seed=3", f"--resilience-report={report}")
    plan_file = next((report / "chaos").glob("*.json"))
    replayed = pytester.runpytest(f"--resilience-replay={plan_file}",
                                  f"--resilience-report={report}")
    replayed.assert_outcomes(failed=1)

    def events(out: str) -> str:
        return out[out.index("events:"):out.index("replay:")]

    assert "chaos: after 1 plan(s)" in replayed.stdout.str()
    assert events(replayed.stdout.str()) == events(first.stdout.str())


def test_the_chaos_fixture_needs_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(chaos):\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*The `chaos` fixture needs @pytest.mark.chaos(...) on the "
                                 "test.*"])


def test_unknown_marker_settings_are_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BODY + '''
@pytest.mark.chaos(failpoints=DB, examples=5)
def test_reads(chaos):
    pass
''')
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    assert ("@pytest.mark.chaos got ['examples']. It takes keywords only: failpoints, "
            "families, max_faults") in result.stdout.str()


def test_a_vacuous_chaos_test_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BODY + '''
@pytest.mark.chaos(failpoints={"db.typo": [Action.raise_()]}, max_examples=10,
                   must_fire=["db.typo"])
def test_reads(chaos):
    read(chaos, 3)
''')
    result = pytester.runpytest("--resilience-seed=1")
    result.assert_outcomes(failed=1)
    assert "fault(s) ['db.typo'] never fired" in result.stdout.str()


def test_loading_the_chaos_plugin_module_does_not_import_hypothesis() -> None:
    code = ("import sys, pytest_resilience._plugin.chaos; "
            "print('hypothesis' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


JUDGED = BODY + '''
from pathlib import Path
from pytest_resilience.checks import Verdict

def judge(history):
    """Saves each history whole, then fails when three faults fired."""
    Path("history.jsonl").write_text(history.to_jsonl())
    fired = history.select("fault.fired")
    return Verdict("fired", len(fired) < 3, f"{len(fired)} faults fired", tuple(fired))

@pytest.mark.chaos(failpoints=DB, families=["clock"], allow=[ConnectionError],
                   checks=[judge])
def test_reads(chaos):
    read(chaos, 5)
'''


def test_replay_by_file_and_by_seed_repeats_the_whole_history(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(JUDGED)
    report = pytester.path / "report"
    saved = pytester.path / "history.jsonl"
    pytester.runpytest("--resilience-seed=8", f"--resilience-report={report}").assert_outcomes(
        failed=1)
    found = saved.read_text()  # Hypothesis runs the minimal plan last
    saved.unlink()
    plan_file = next((report / "chaos").glob("*.json"))
    pytester.runpytest(f"--resilience-replay={plan_file}",
                       f"--resilience-report={report}").assert_outcomes(failed=1)
    assert saved.read_text() == found
    pytester.runpytest("--resilience-seed=8",
                       f"--resilience-report={report}").assert_outcomes(failed=1)
    assert saved.read_text() == found
    assert found.count('"kind": "fault.fired"') >= 3


def test_a_family_factory_receives_the_fixtures_it_names(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import pytest
from faults.families import cuda_spikes
from pytest_resilience.memory._gpu import read_gpu_devices

@pytest.fixture
def gpu_size():
    return "1GiB"

@pytest.mark.chaos(families=[lambda gpu_size: cuda_spikes(total=gpu_size)], horizon=2.0,
                   max_examples=20, must_fire=["cuda_spike"])
def test_gpu(chaos, gpu_size):
    assert read_gpu_devices()[0].total == 2**30
    chaos.clock.sleep(3.0)

@pytest.mark.chaos(families=[lambda missing: cuda_spikes()])
def test_missing(chaos):
    pass
''')
    result = pytester.runpytest("--resilience-seed=1")
    result.assert_outcomes(passed=1, failed=1)
    assert "takes fixture(s) ['missing'] that the test does not use. Add them to the test's " \
        "arguments." in result.stdout.str()


def test_a_mutant_is_shown_with_its_shrunk_plan_in_pytest_output(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import pytest
import faults
from faults import Action
from pytest_resilience._backoff import Backoff
from pytest_resilience.checks import check_retry
from pytest_resilience._errors import RetryError
from pytest_resilience._retry import Retry

BACKOFF = Backoff.exponential(base=0.1, max=2.0)

class NoBackoffRetry(Retry):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.backoff = Backoff.constant(0.0)

@pytest.mark.chaos(failpoints={"db.read": [Action.raise_(ConnectionError("reset"))]},
                   checks=[lambda h: check_retry(h, backoff=BACKOFF, jitter="full")],
                   allow=[RetryError])
def test_reads(chaos):
    policy = NoBackoffRetry(attempts=4, backoff=BACKOFF, jitter="full", clock=chaos.clock,
                            seed=chaos.rng.randrange(2**32))
    policy.call(faults.failpoint, "db.read")
''')
    result = pytester.runpytest("--resilience-seed=1")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "checker 'retry' found a violation:" in out
    assert "which stays that short with probability 0, below significance=1e-06" in out
    assert "minimal fault plan (1 fault(s)):" in out
    assert '"failpoint": "db.read"' in out
    assert "replay: pytest 'test_a_mutant_is_shown_with_its_shrunk_plan_in_pytest_output.py::" \
        "test_reads' --resilience-replay=" in out


def test_a_chaos_failure_is_printed_once(pytester: pytest.Pytester) -> None:
    failing(pytester)
    result = pytester.runpytest("--resilience-seed=3")
    result.assert_outcomes(failed=1)
    # pytest's own short summary repeats the message (in full under CI=true): count above it
    out = result.stdout.str().split("short test summary info")[0]
    assert out.count("minimal fault plan (1 fault(s)):") == 1
    assert "During handling of the above exception" not in out
    assert out.count("replay: pytest ") == 1


def test_replaying_a_plan_on_another_test_is_an_error_naming_both(
        pytester: pytest.Pytester) -> None:
    failing(pytester)
    pytester.makepyfile(other=BODY + '''
@pytest.mark.chaos(failpoints=DB)
def test_other(chaos):
    read(chaos, 3)
''')
    report = pytester.path / "report"
    pytester.runpytest("test_replaying_a_plan_on_another_test_is_an_error_naming_both.py",
                       "--resilience-seed=3", f"--resilience-report={report}")
    plan_file = next((report / "chaos").glob("*.json"))
    result = pytester.runpytest("other.py", f"--resilience-replay={plan_file}")
    result.assert_outcomes(failed=1)
    owner = "test_replaying_a_plan_on_another_test_is_an_error_naming_both.py::test_reads"
    assert (f"--resilience-replay={plan_file} holds the plan of {owner!r}, not of this test "
            f"('other.py::test_other'). Replay it on its own test: pytest '{owner}' "
            f"--resilience-replay={plan_file}") in result.stdout.str()
    assert "chaos plans:" not in result.stdout.str()  # no fresh plans were generated


def test_a_body_using_only_its_fixtures_faults_needs_no_families(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import pytest
import faults
from faults import Action

@pytest.mark.chaos(max_examples=40)
def test_own_faults(chaos):
    with faults.inject("db.read", Action.raise_(ConnectionError), clock=chaos.clock):
        tries = chaos.rng.randrange(1, 6)
        for _ in range(tries):
            try:
                faults.failpoint("db.read")
            except ConnectionError:
                chaos.clock.sleep(1.0)
    assert chaos.clock.monotonic() == tries
    assert chaos.clock.monotonic() < 5, f"{tries} tries"
''')
    result = pytester.runpytest("--resilience-seed=1")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "AssertionError: 5 tries" in out
    assert "minimal fault plan (0 fault(s)):" in out
    assert '"draws": [\n    4\n  ]' in out  # randrange(1, 6) drew its 5th value: 5


def test_the_rng_shrinks_toward_the_simplest_value() -> None:
    from pytest_resilience.chaos import ChaosFailure, ChaosRun, run_chaos

    def body(run: ChaosRun) -> None:
        picks = (run.rng.randrange(10, 1000), run.rng.random(), run.rng.choice("xyz"),
                 run.rng.uniform(2.0, 3.0), run.rng.getrandbits(8))
        raise AssertionError(repr(picks))

    with pytest.raises(ChaosFailure) as info:
        run_chaos(body, families=["clock"], seed=1, max_examples=20)
    assert str(info.value.error) == "(10, 0.0, 'x', 2.0, 0)"
