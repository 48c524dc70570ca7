"""The event history: append-only, filtered, exported, cheap when nobody listens."""

from __future__ import annotations

import json
import threading
from typing import TypedDict

from pytest_resilience._clock import VirtualClock
from pytest_resilience._events import (
    Event,
    History,
    active_history,
    add_listener,
    emit,
    recording,
)
from pytest_resilience.kinds import RETRY_ATTEMPT, RETRY_SLEEP, declare


class _Open(TypedDict):
    """Test kinds carry any attributes."""


# Kinds of these tests' own, declared as a user would declare theirs.
A_B, A_C, A_D, A_E, C_D = (declare(k, _Open, source="test", doc="a test kind", open=True)
                           for k in ("a.b", "a.c", "a.d", "a.e", "c.d"))


def test_emit_without_listeners_records_nothing() -> None:
    assert active_history() is None
    # no history, no listener: a no-op
    emit(RETRY_ATTEMPT, "svc", attempt=1, outcome="ok", error=None, elapsed=0.0)


def test_recording_collects_events_with_clock_time() -> None:
    clock = VirtualClock(start=5.0)
    with recording() as history:
        emit(RETRY_ATTEMPT, "svc", clock, attempt=1, outcome="ok", error=None, elapsed=0.0)
        clock.advance(2)
        emit(RETRY_SLEEP, "svc", clock, attempt=1, delay=0.5)
    assert active_history() is None
    assert history.kinds() == ["retry.attempt", "retry.sleep"]
    assert [e.time for e in history] == [5.0, 7.0]
    assert history[0].attrs == {"attempt": 1, "outcome": "ok", "error": None, "elapsed": 0.0}
    assert [e.seq for e in history] == [0, 1]


def test_recording_nests_and_restores_the_previous_history() -> None:
    with recording() as outer:
        with recording() as inner:
            emit(A_B, "x")
        emit(C_D, "x")
    assert inner.kinds() == ["a.b"]
    assert outer.kinds() == ["c.d"]


def test_explicit_history_wins_over_the_active_one() -> None:
    mine = History()
    with recording() as active:
        emit(A_B, "x", history=mine)
    assert len(mine) == 1
    assert len(active) == 0


def test_select_by_kind_prefix_and_source() -> None:
    history = History()
    history.append("breaker.transition", "db", time=0, attrs={"from": "closed", "to": "open"})
    history.append("breaker.call", "db", time=1)
    history.append("breaker.call", "cache", time=2)
    history.append("retry.attempt", "db", time=3)
    assert len(history.select(kind="breaker.")) == 3
    assert len(history.select(kind="breaker.call", source="db")) == 1
    assert [e.seq for e in history.select(source="db")] == [0, 1, 3]


def test_jsonl_round_trip_keeps_everything() -> None:
    history = History()
    history.append("fault.fired", "failpoint:db", time=1.5, attrs={"call": 2, "action": "raise()"})
    history.append("weird", "x", time=2.0, attrs={"obj": object()})
    text = history.to_jsonl()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0] == {
        "seq": 0, "time": 1.5, "kind": "fault.fired", "source": "failpoint:db",
        "attrs": {"call": 2, "action": "raise()"},
    }
    assert lines[1]["attrs"]["obj"].startswith("<object object")
    again = History.from_jsonl(text)
    assert again.kinds() == history.kinds()
    assert again.append("next", "x", time=3).seq == 2


def test_write_jsonl(tmp_path) -> None:  # type: ignore[no-untyped-def]
    history = History()
    history.append("a.b", "x", time=0)
    path = history.write_jsonl(tmp_path / "events.jsonl")
    assert History.from_jsonl(path.read_text()).kinds() == ["a.b"]


def test_subscribers_and_global_listeners_see_every_event() -> None:
    seen: list[Event] = []
    global_seen: list[Event] = []
    remove = add_listener(global_seen.append)
    try:
        with recording() as history:
            unsubscribe = history.subscribe(seen.append)
            emit(A_B, "x", value=1)
            unsubscribe()
            emit(A_C, "x")
        emit(A_D, "x")  # no history: listeners still hear it
    finally:
        remove()
    emit(A_E, "x")
    assert [e.kind for e in seen] == ["a.b"]
    assert [e.kind for e in global_seen] == ["a.b", "a.c", "a.d"]
    assert global_seen[-1].seq == -1


def test_concurrent_appends_keep_unique_ordered_sequence_numbers() -> None:
    history = History()

    def writer() -> None:
        for _ in range(500):
            history.append("a.b", "x", time=0)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [e.seq for e in history] == list(range(4000))
