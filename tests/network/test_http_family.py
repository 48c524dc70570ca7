"""The HTTP chaos family: generated, shrunk, applied in chaos runs, undone, replayed."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import find, given, settings

pytest.importorskip("h11", reason="faults.http needs h11 (the http extra)")

from faults import FaultPlan, Scheduled
from faults.families import HTTP_KINDS, http_faults
from faults.http import HttpFaultProxy
from faults.strategies import fault_plans
from pytest_resilience import Retry, emit
from pytest_resilience.chaos import ChaosFailure, ChaosRun, replay, run_chaos

FAMILY = http_faults(lambda: None, paths=("/v1/*", "/health"), statuses=(503, 429),  # type: ignore[arg-type,return-value]
                     headers=("Content-Type", "X-Model"), rates=(1.0, 0.5), max_ms=800,
                     max_bytes=64)
PLANS = fault_plans([FAMILY], max_faults=3, horizon=2.0)


@settings(max_examples=60, deadline=None)
@given(PLANS)
def test_http_plans_stay_inside_their_bounds(plan: FaultPlan) -> None:
    for entry in plan.scheduled:
        assert entry.family == "http"
        assert entry.kind in HTTP_KINDS
        params = entry.params
        assert params["path"] in ("/v1/*", "/health")
        assert params["rate"] in (1.0, 0.5)
        assert 0.01 <= params["duration"] <= 2.0
        if entry.kind == "abort":
            assert params["status"] in (503, 429)
        elif entry.kind == "delay":
            assert 1 <= params["ms"] <= 800
        elif entry.kind == "truncate_body":
            assert 0 <= params["nbytes"] <= 64
        else:
            assert params["header"] in ("Content-Type", "X-Model")


def test_http_plans_shrink_to_one_late_short_503_on_the_first_path() -> None:
    plan = find(PLANS, lambda p: len(p) >= 1)
    assert plan.scheduled == (Scheduled("http", "abort", 2.0, {
        "path": "/v1/*", "rate": 1.0, "status": 503, "duration": 0.01}),)


def test_the_family_needs_its_proxy_and_checks_its_arguments() -> None:
    with pytest.raises(ValueError) as info:
        fault_plans(["http"])
    assert str(info.value) == ("family='http' needs its target from the test. Pass "
                               "http_faults(proxy) in families=[...] instead of the name "
                               "'http'.")
    with pytest.raises(ValueError, match=r"kinds=\['jam'\] names no HTTP fault or unknown"):
        http_faults(lambda: None, kinds=["jam"])  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError) as info:
        http_faults(lambda: None, statuses=[200])  # type: ignore[arg-type,return-value]
    assert str(info.value) == ("statuses=[200]: status=200 is not an error status. Pass an "
                               "int from 400 to 599, such as 503 or 429.")


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"paths": True}, TypeError, "paths=True is not a list. Pass a list of at least one "
                                 "value."),
    ({"kinds": None}, TypeError, "kinds=None is not a list. Pass a list of at least one "
                                 "value."),
    ({"headers": []}, ValueError, "headers=[] names nothing. Pass a list of at least one "
                                  "value."),
    ({"rates": {"a": 1}}, TypeError, "rates={'a': 1}: rate='a' is not a probability. Pass a "
                                     "number in [0, 1]."),
    ({"paths": [1]}, ValueError, "paths=[1]: path=1 is not a path pattern. Pass a glob on "
                                 "the path without its query, such as '/v1/predict' or "
                                 "'/v1/*'."),
])
def test_the_familys_lists_are_named_when_wrong(kwargs: dict[str, Any], error: type[Exception],
                                                message: str) -> None:
    """Found by fuzzing: a bool or None crashed in iteration, an item's error named the
    item's parameter instead of the list."""
    with pytest.raises(error) as info:
        http_faults(lambda: None, **kwargs)  # type: ignore[arg-type,return-value]
    assert str(info.value) == message


@pytest.fixture
def proxy(model: Any) -> Iterator[HttpFaultProxy]:
    with HttpFaultProxy(model.address, name="model", seed=2) as p:
        yield p


class Unavailable(Exception):
    """The service answered with an error status."""


def predict(run: ChaosRun, proxy: HttpFaultProxy) -> bytes:
    def call() -> bytes:
        try:
            with urllib.request.urlopen(f"{proxy.url}/v1/predict", timeout=10) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            exc.close()
            raise Unavailable(exc.code) from None

    retry = Retry(attempts=3, retry_on=Unavailable, clock=run.clock, name="predict", seed=1)
    return retry.call(call)


def test_a_chaos_run_finds_the_outage_retries_cannot_hide_and_replays_it(
        proxy: HttpFaultProxy) -> None:
    family = http_faults(proxy, kinds=["abort", "delay"], max_ms=300)

    def body(run: ChaosRun) -> None:
        for _ in range(3):
            start = run.clock.monotonic()
            reply = predict(run, proxy)
            took = run.clock.monotonic() - start
            emit("test.predict", "body", run.clock, took=took)
            assert reply.startswith(b'{"path": "/v1/predict"')
            assert took < 0.25, took
            run.clock.sleep(0.2)

    with pytest.raises(ChaosFailure) as info:
        run_chaos(body, families=[family], horizon=1.0, seed=3, max_examples=60,
                  max_faults=2)
    found = info.value
    assert found.plan.scheduled  # an outage or a delay broke it
    assert proxy.faults == {}  # every fault was undone after the run
    with pytest.raises(ChaosFailure) as again:
        replay(body, FaultPlan.from_json(found.plan.to_json()), families=[family])
    assert again.value.history.to_jsonl() == found.history.to_jsonl()
    requests = again.value.history.select("http.request")
    assert requests
    assert requests[0].attrs["request"] == 1  # numbered per plan
