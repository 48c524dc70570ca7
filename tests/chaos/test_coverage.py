"""The coverage matrix: operations x fault families x properties, from a history."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_resilience import History
from pytest_resilience._coverage import (
    FAIL,
    NOT_EXERCISED,
    PASS,
    coverage_matrix,
    merge,
    missing,
    render,
    union,
)


def build(*steps: tuple[Any, ...]) -> History:
    history = History()
    for time, kind, source, attrs in steps:
        history.append(kind, source, time=time, attrs=attrs)
    return history


def armed(t: float, source: str, family: str) -> tuple[Any, ...]:
    return (t, "fault.armed", source, {"family": family})


def fired(t: float, source: str, family: str) -> tuple[Any, ...]:
    return (t, "fault.fired", source, {"family": family})


def disarmed(t: float, source: str, family: str) -> tuple[Any, ...]:
    return (t, "fault.disarmed", source, {"family": family})


def sample(t: float, op: str, seconds: float = 0.01) -> tuple[Any, ...]:
    return (t, "sla.sample", op, {"seconds": seconds, "ok": True})


def verdict(t: float, checker: str, passed: bool) -> tuple[Any, ...]:
    return (t, "check.verdict", checker, {"checker": checker, "passed": passed,
                                          "explanation": "..."})


def budget(t: float, text: str, op: str | None, passed: bool | None) -> tuple[Any, ...]:
    return (t, "sla.budget", "test", {"budget": text, "metric": "p95", "operation": op,
                                      "threshold": 0.2, "observed": 0.1, "passed": passed,
                                      "reason": "..."})


HISTORY = build(
    sample(0.5, "search"),                       # before any fault: exercised under nothing
    armed(1, "proxy", "network"),
    sample(1.5, "ingest"),                       # network armed but not yet fired
    fired(2, "proxy", "network"),
    sample(2.5, "search"),                       # under network
    disarmed(3, "proxy", "network"),
    sample(3.2, "ingest", seconds=0.5),          # started at 2.7, while network was hot
    armed(4, "faults", "failpoint"), fired(4.5, "failpoint:db", "failpoint"),
    (5, "call.start", "layer", {"function": "reindex", "args": "()", "call": 1,
                                "parent": None}),
    disarmed(6, "faults", "failpoint"),
    verdict(7, "retry", True),
    verdict(7.1, "breaker", False),
    budget(8, "search: p95<200ms", "search", True),
    budget(8, "p99<1s", None, None),
)


def test_cells_say_pass_fail_or_not_exercised() -> None:
    matrix = coverage_matrix(HISTORY)
    assert matrix["operations"] == ["ingest", "reindex", "search"]
    assert matrix["families"] == ["failpoint", "network"]
    assert matrix["exercised"] == {"ingest": {"network": 1}, "reindex": {"failpoint": 1},
                                   "search": {"network": 1}}
    assert matrix["properties"] == {
        "breaker": {"operation": None, "verdict": FAIL},
        "p99<1s": {"operation": None, "verdict": None},
        "retry": {"operation": None, "verdict": PASS},
        "search: p95<200ms": {"operation": "search", "verdict": PASS},
    }
    cells = matrix["cells"]
    assert cells["search"]["network"] == {"breaker": FAIL, "p99<1s": NOT_EXERCISED,
                                          "retry": PASS, "search: p95<200ms": PASS}
    assert cells["search"]["failpoint"] == dict.fromkeys(cells["search"]["network"],
                                                         NOT_EXERCISED)
    assert "search: p95<200ms" not in cells["ingest"]["network"]  # scoped to search
    assert cells["ingest"]["network"]["retry"] == PASS
    assert cells["reindex"]["failpoint"]["breaker"] == FAIL
    json.dumps(matrix)  # plain builtins


def test_merging_takes_the_worst_judged_status_and_fills_the_gaps() -> None:
    a = coverage_matrix(build(armed(0, "p", "network"), fired(0, "p", "network"),
                              sample(1, "search"), verdict(2, "retry", True)))
    b = coverage_matrix(build(armed(0, "c", "clock"), fired(0, "c", "clock"),
                              sample(1, "ingest"), verdict(2, "retry", False),
                              verdict(2, "rollback", True)))
    merged = merge(a, b)
    assert merged["cells"] == {
        "ingest": {"clock": {"retry": FAIL, "rollback": PASS},
                   "network": {"retry": NOT_EXERCISED, "rollback": NOT_EXERCISED}},
        "search": {"clock": {"retry": NOT_EXERCISED, "rollback": NOT_EXERCISED},
                   "network": {"retry": PASS, "rollback": NOT_EXERCISED}},
    }
    assert merged["properties"]["retry"]["verdict"] == FAIL
    assert merge(merged, a)["exercised"]["search"] == {"network": 2}


def test_the_union_of_two_tests_keeps_each_tests_own_cells_only() -> None:
    a = coverage_matrix(build(armed(0, "p", "network"), fired(0, "p", "network"),
                              sample(1, "search"), verdict(2, "retry", True)))
    b = coverage_matrix(build(armed(0, "c", "clock"), fired(0, "c", "clock"),
                              sample(1, "ingest"), verdict(2, "retry", False),
                              verdict(2, "rollback", True)))
    both = union(a, b)
    assert both["cells"] == {"ingest": {"clock": {"retry": FAIL, "rollback": PASS}},
                             "search": {"network": {"retry": PASS}}}  # no made-up cells
    assert both["operations"] == ["ingest", "search"]
    assert union(both, a)["exercised"]["search"] == {"network": 2}
    assert render(both, observed_only=True) == [
        "ingest x clock (1 observed): retry: FAIL, rollback: PASS",
        "search x network (1 observed): retry: PASS",
    ]


def test_a_chaos_run_event_carries_the_matrix_of_its_plans() -> None:
    inner = coverage_matrix(HISTORY)
    history = build((9, "chaos.run", "t", {"plans": 3, "failures": 0, "fired": {},
                                           "coverage": inner}))
    assert coverage_matrix(history) == inner


def test_missing_names_the_cells_never_exercised() -> None:
    matrix = coverage_matrix(HISTORY)
    assert missing(matrix, [("search", "network"), ("search", "failpoint"),
                            ("search", "network", "p99<1s"), ("search", "network", "retry"),
                            ("upload", "network")]) == [
        "search x failpoint", "search x network x p99<1s", "upload x network"]


def test_render_shows_one_line_per_operation_and_family() -> None:
    lines = render(coverage_matrix(HISTORY))
    assert lines[0] == ("ingest x failpoint (0 observed): breaker: NOT EXERCISED, p99<1s: NOT "
                        "EXERCISED, retry: NOT EXERCISED")
    assert len(lines) == 6


EVENTS = st.lists(st.one_of(
    st.builds(armed, st.floats(0, 10), st.sampled_from("ab"), st.sampled_from(["x", "y"])),
    st.builds(fired, st.floats(0, 10), st.sampled_from("ab"), st.sampled_from(["x", "y"])),
    st.builds(disarmed, st.floats(0, 10), st.sampled_from("ab"), st.sampled_from(["x", "y"])),
    st.builds(sample, st.floats(0, 10), st.sampled_from(["s", "i"])),
    st.builds(verdict, st.floats(0, 10), st.sampled_from(["r", "b"]), st.booleans()),
), max_size=25)


@settings(max_examples=150, deadline=None)
@given(EVENTS, EVENTS, EVENTS)
def test_merge_is_commutative_associative_and_keeps_every_cell(
        a: list[Any], b: list[Any], c: list[Any]) -> None:
    ma, mb, mc = (coverage_matrix(build(*steps)) for steps in (a, b, c))
    assert merge(ma, mb) == merge(mb, ma)
    assert merge(merge(ma, mb), mc) == merge(ma, merge(mb, mc))
    merged = merge(ma, mb)
    for op in merged["operations"]:
        for family in merged["families"]:
            assert set(merged["cells"].get(op, {}).get(family, {})) == set(
                merged["properties"])
