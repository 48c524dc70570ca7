"""Options, ini keys, the seed header, replay, and loading/unloading the plugin."""

from __future__ import annotations

import re

import pytest

PASSING = "def test_ok():\n    assert True\n"


def _seed(result: pytest.RunResult) -> int:
    match = re.search(r"resilience: seed=(\d+) \(replay: --resilience-seed=\1\)",
                      result.stdout.str())
    assert match, result.stdout.str()
    return int(match.group(1))


def test_help_lists_the_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "resilience", "--help")
    result.stdout.fnmatch_lines([
        "*pytest-resilience*",
        "*--resilience-seed=N|random|last*",
        "*--resilience-report=DIR*",
        "*resilience_seed (string)*",
    ])
    assert result.ret == 0


def test_markers_lists_ours_and_exits_cleanly(pytester: pytest.Pytester) -> None:
    """Regression: with the family modules registered first, --markers and --help broke
    in pytest_configure (the report module read the session before it existed)."""
    result = pytester.runpytest_subprocess("-p", "resilience", "--markers")
    assert result.ret == 0, result.stderr.str()
    ours = {line.split("(")[0] for line in result.outlines if line.startswith("@pytest.mark.")}
    assert {"@pytest.mark.chaos", "@pytest.mark.sla", "@pytest.mark.faults"} <= ours


def test_entry_point_loads_and_no_resilience_turns_it_off(pytester: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider -p no:randomly\n")
    pytester.makepyfile(PASSING)
    on = pytester.runpytest_subprocess()
    on.assert_outcomes(passed=1)
    assert "resilience: seed=" in on.stdout.str()
    off = pytester.runpytest_subprocess("-p", "no:resilience")
    off.assert_outcomes(passed=1)
    assert "resilience: seed=" not in off.stdout.str()


def test_seed_is_printed_and_replayed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_seed(resilience_seed, request):
            print("TEST-SEED", resilience_seed)
        """
    )
    first = pytester.runpytest("-s")
    seed = _seed(first)
    line = re.findall(r"TEST-SEED \d+", first.stdout.str())
    again = pytester.runpytest("-s", f"--resilience-seed={seed}")
    assert _seed(again) == seed
    assert re.findall(r"TEST-SEED \d+", again.stdout.str()) == line
    other = pytester.runpytest("-s", f"--resilience-seed={seed + 1}")
    assert re.findall(r"TEST-SEED \d+", other.stdout.str()) != line


def test_explicit_seed_and_ini_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    assert _seed(pytester.runpytest("--resilience-seed=1234")) == 1234
    pytester.makeini("[pytest]\naddopts = -p resilience -p no:cacheprovider\n"
                     "resilience_seed = 99\n")
    assert _seed(pytester.runpytest()) == 99


def test_last_replays_the_previous_seed(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\naddopts = -p resilience\n")
    pytester.makepyfile(PASSING)
    seed = _seed(pytester.runpytest())
    assert _seed(pytester.runpytest("--resilience-seed=last")) == seed


def test_last_without_a_previous_run_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\naddopts = -p resilience\n")
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("--resilience-seed=last")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--resilience-seed=last: no previous seed is cached.*"])


def test_bad_seed_names_the_accepted_forms(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--resilience-seed=abc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'abc' is not a seed. Pass an integer, 'random' or 'last'.*"])


def test_pytest_randomly_seed_is_used_when_active(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING)
    result = pytester.runpytest("-p", "randomly", "-p", "no:cacheprovider", "-p",
                                "resilience", "-p", "randomly", "--randomly-seed=777")
    assert _seed(result) == 777
    mine = pytester.runpytest("-p", "randomly", "--randomly-seed=777", "--resilience-seed=5")
    assert _seed(mine) == 5


def test_report_option_writes_report_json(pytester: pytest.Pytester) -> None:
    import json

    pytester.makepyfile(
        """
        import faults

        def test_uses_faults(faults):
            faults.inject("x")
        """
    )
    result = pytester.runpytest("--resilience-report=out", "--resilience-seed=3")
    result.assert_outcomes(passed=1)
    data = json.loads((pytester.path / "out" / "report.json").read_text())
    assert data["seed"] == 3
    assert data["tests"][0]["nodeid"].endswith("::test_uses_faults")
    assert data["tests"][0]["outcome"] == "passed"
