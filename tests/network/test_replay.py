"""A failing network chaos plan replays with a byte-identical history (JSONL), with
latency, ``reset_peer`` after N ms and ``slow_close`` in it."""

from __future__ import annotations

import ast
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import find

from faults import FaultPlan, Scheduled
from faults.families import NETWORK_KINDS as KINDS
from faults.families import network_toxics
from faults.network import FaultProxy
from faults.strategies import fault_plans
from pytest_resilience import emit
from pytest_resilience.chaos import ChaosFailure, ChaosRun, replay, run_chaos

BUDGET = 0.3  # seconds a round trip may take


def round_trips(run: ChaosRun, proxy: FaultProxy, n: int = 5) -> list[str]:
    """``n`` echo round trips 0.25 s apart; each one's outcome is an event."""
    outcomes = []
    for _ in range(n):
        start = run.clock.monotonic()
        try:
            with socket.create_connection(proxy.address, timeout=10) as conn:
                conn.sendall(b"ping")
                conn.shutdown(socket.SHUT_WR)
                data = b""
                while chunk := conn.recv(64):
                    data += chunk
            outcome = "ok" if data == b"ping" else f"short:{len(data)}"
        except OSError as exc:
            outcome = type(exc).__name__
        took = round(run.clock.monotonic() - start, 6)
        if outcome == "ok" and took > BUDGET:
            outcome = "slow"
        emit("test.echo", "body", run.clock, outcome=outcome, took=took)
        outcomes.append(outcome)
        run.clock.sleep(0.25)
    return outcomes


@pytest.fixture
def proxy(echo: Any) -> Any:
    with FaultProxy(echo.address, name="db", seed=7) as fault_proxy:
        yield fault_proxy


def test_reset_peer_after_n_ms_and_slow_close_are_drawn_by_default(proxy: FaultProxy) -> None:
    family = network_toxics(proxy)
    assert set(family.kinds) == set(KINDS) >= {"reset_peer", "slow_close"}
    plan = find(fault_plans([family], max_faults=1),
                lambda p: any(s.kind == "reset_peer" for s in p.scheduled))
    assert plan.scheduled[0].params["after_ms"] == 0  # shrinks toward an immediate reset


def test_a_plan_with_latency_reset_peer_after_n_ms_and_slow_close_replays_exactly(
        proxy: FaultProxy) -> None:
    plan = FaultPlan(scheduled=(
        Scheduled("network", "latency", 0.0,
                  {"direction": "downstream", "ms": 150, "duration": 0.2}),
        Scheduled("network", "reset_peer", 0.5,
                  {"direction": "downstream", "after_ms": 50, "duration": 0.3}),
        Scheduled("network", "slow_close", 1.0,
                  {"direction": "downstream", "ms": 400, "duration": 0.6}),
    ))
    family = network_toxics(proxy)

    def body(run: ChaosRun) -> None:
        outcomes = round_trips(run, proxy)
        assert outcomes == ["ok"] * 5, outcomes

    histories = []
    for _ in range(3):
        with pytest.raises(ChaosFailure) as info:
            replay(body, FaultPlan.from_json(plan.to_json()), families=[family])
        histories.append(info.value.history)
    assert str(info.value.error).startswith(
        "['ok', 'ok', 'ConnectionResetError', 'ok', 'slow']")
    jsonl = [h.to_jsonl() for h in histories]
    assert jsonl[1:] == [jsonl[0]] * 2
    echoes = [(round(e.time, 9), e.attrs["outcome"], e.attrs["took"])
              for e in histories[0].select("test.echo")]
    assert echoes == [(0.15, "ok", 0.15), (0.4, "ok", 0.0),
                      (0.7, "ConnectionResetError", 0.05), (0.95, "ok", 0.0),
                      (1.6, "slow", 0.4)]
    opens = [e.attrs["conn"] for e in histories[0].select("proxy.connection")
             if e.attrs["event"] == "open"]
    assert opens == [1, 2, 3, 4, 5]  # numbered per plan


def test_a_failing_plan_found_by_the_search_replays_from_its_line(proxy: FaultProxy) -> None:
    family = network_toxics(proxy, kinds=["latency", "slow_close"], max_ms=600)

    def body(run: ChaosRun) -> None:
        assert "slow" not in round_trips(run, proxy, n=2)

    with pytest.raises(ChaosFailure) as info:
        run_chaos(body, families=[family], horizon=0.5, seed=5, max_examples=100,
                  max_faults=1)
    found = info.value
    argument = found.replay_command.split("FaultPlan.from_json(", 1)[1].removesuffix("))")
    plan = FaultPlan.from_json(ast.literal_eval(argument))
    assert plan == found.plan
    for _ in range(2):
        with pytest.raises(ChaosFailure) as again:
            replay(body, plan, families=[family])
        assert again.value.history.to_jsonl() == found.history.to_jsonl()


PYTESTER_BODY = '''
import os, socket, socketserver, threading
import pytest
from faults.families import network_toxics
from pytest_resilience import emit
from pytest_resilience.checks import Verdict

{echo_through_proxy}


def slow_round_trips(history):
    """Writes the plan's whole history, then fails on a round trip over budget."""
    history.write_jsonl(os.environ["HISTORY_OUT"])
    slow = [e for e in history.select("test.echo") if e.attrs["took"] > 0.3]
    return Verdict("budget", not slow, f"{len(slow)} slow round trip(s)", tuple(slow))


@pytest.mark.chaos(families=[lambda proxy: network_toxics(
                       proxy, kinds=["latency", "slow_close"], max_ms=600)],
                   checks=[slow_round_trips], horizon=0.5, max_examples=100, max_faults=1)
def test_echo(chaos, proxy):
    for _ in range(2):
        start = chaos.clock.monotonic()
        try:
            with socket.create_connection(proxy.address, timeout=10) as conn:
                conn.sendall(b"ping")
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(64):
                    pass
            outcome = "ok"
        except OSError as exc:
            outcome = type(exc).__name__
        emit("test.echo", "body", chaos.clock, outcome=outcome,
             took=chaos.clock.monotonic() - start)
        chaos.clock.sleep(0.25)
'''


def test_the_replay_line_of_a_failing_chaos_test_gives_the_same_history(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        echo_through_proxy: str) -> None:
    pytester.makepyfile(textwrap.dedent(PYTESTER_BODY).replace("{echo_through_proxy}",
                                                               echo_through_proxy))
    first = tmp_path / "found.jsonl"
    monkeypatch.setenv("HISTORY_OUT", str(first))
    result = pytester.runpytest("-p", "resilience", "--resilience-seed=11")
    result.assert_outcomes(failed=1)
    line = next(x for x in result.outlines if "--resilience-replay=" in x)
    plan_file = line.split("--resilience-replay=", 1)[1].split()[0]
    replays = []
    for n in range(2):
        out = tmp_path / f"replay{n}.jsonl"
        monkeypatch.setenv("HISTORY_OUT", str(out))
        pytester.runpytest("-p", "resilience", f"--resilience-replay={plan_file}"
                           ).assert_outcomes(failed=1)
        replays.append(out.read_bytes())
    assert replays == [first.read_bytes()] * 2
    assert b'"kind": "test.echo"' in replays[0]
