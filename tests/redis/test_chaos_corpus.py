"""The fleet-wide chaos corpus (``--resilience-chaos-db``) and sharded chaos tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pytest_resilience.chaos._corpus import KEY_PREFIX

FAILING = '''
import pytest
import faults
from faults import Action

@pytest.mark.chaos(failpoints={"db.read": [Action.raise_(ConnectionError)]},
                   families=["clock"], max_examples=60)
def test_reads(chaos):
    for _ in range(3):
        try:
            faults.failpoint("db.read")
            return
        except ConnectionError:
            chaos.clock.sleep(1.0)
    raise ConnectionError("gave up")
'''


def first_failing_plan(result: pytest.RunResult) -> int:
    """The number of the plan that failed first (1 when the first plan failed)."""
    found = re.search(r"chaos: after (\d+) plan\(s\)(?: \(plan (\d+) failed first)?",
                      result.stdout.str())
    assert found is not None, result.stdout.str()
    return int(found.group(2) or found.group(1))


def test_a_plan_one_runner_found_is_replayed_first_by_the_next(
    pytester: pytest.Pytester, redis_server: Any
) -> None:
    redis_server.flush()
    pytester.makepyfile(FAILING)
    option = f"--resilience-chaos-db={redis_server.url}"
    alone = pytester.runpytest("--resilience-seed=11")
    alone.assert_outcomes(failed=1)
    assert first_failing_plan(alone) > 1  # on its own, seed 11 needs a few plans
    first = pytester.runpytest("--resilience-seed=5", option)
    first.assert_outcomes(failed=1)
    with redis_server.client() as client:
        assert client.keys(KEY_PREFIX + b"*")  # the failing plan is in Redis
    other = pytester.runpytest("--resilience-seed=11", option)  # another runner, same corpus
    other.assert_outcomes(failed=1)
    assert first_failing_plan(other) == 1


def test_a_directory_corpus_from_the_ini_file(pytester: pytest.Pytester, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    pytester.makeini(f"[pytest]\naddopts = -p resilience -p no:cacheprovider\n"
                     f"resilience_chaos_db = {corpus}\n")
    pytester.makepyfile(FAILING)
    pytester.runpytest("--resilience-seed=5").assert_outcomes(failed=1)
    assert any(corpus.rglob("*"))
    again = pytester.runpytest("--resilience-seed=11")
    again.assert_outcomes(failed=1)
    assert first_failing_plan(again) == 1


def test_an_unreachable_corpus_fails_the_chaos_test_naming_the_fix(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(FAILING)
    result = pytester.runpytest("--resilience-chaos-db=redis://127.0.0.1:1/0")
    result.assert_outcomes(failed=1)
    result.stdout.re_match_lines([
        r".*--resilience-chaos-db=redis://127.0.0.1:1/0: cannot reach Redis for the chaos "
        r"corpus \(ConnectionError: .*\)\. Start it, or drop the option\."])


def test_shards_split_one_chaos_test_into_items_with_their_own_seeds(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile('''
import pytest
import faults
from faults import Action

SEEN = []

@pytest.mark.chaos(failpoints={"db.read": [Action.raise_(ConnectionError)]},
                   max_examples=12, shards=3, allow=[ConnectionError])
def test_reads(chaos, resilience_seed):
    SEEN.append(resilience_seed)
    faults.failpoint("db.read")

def test_seeds_differ():
    assert len(set(SEEN)) == 3
''')
    result = pytester.runpytest("--resilience-seed=1", "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "*test_reads?chaos-shard-1of3? PASSED*",
        "*test_reads?chaos-shard-2of3? PASSED*",
        "*test_reads?chaos-shard-3of3? PASSED*",
    ])
    plans = re.search(r"chaos: (\d+) plans in 3 test", result.stdout.str())
    assert plans is not None
    assert int(plans.group(1)) == 12  # 4 plans per shard


def test_bad_shards_are_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import pytest

@pytest.mark.chaos(families=["clock"], shards=0)
def test_x(chaos):
    pass
''')
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.chaos(shards=0): pass an integer >= 1.*"])
