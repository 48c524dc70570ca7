"""The model server's resilience suite: each test injects one failure and asserts what the
server does about it (see README.md in this directory)."""

from __future__ import annotations

from typing import Any

import pytest
from _support.loopback import request
from cli_loader import CLI_ATTEMPTS, CLI_BACKOFF, CLI_TIMEOUT, CliLoader, CliMissing
from model_app import (
    LOAD_ATTEMPTS,
    LOAD_BACKOFF,
    MODELS,
    PROBE,
    ModelRepository,
    ModelServer,
    ModelService,
)

from faults import Action, Fault, Trigger
from pytest_resilience import RetryError
from pytest_resilience.checks import check_eviction, check_retry
from pytest_resilience.memory import MemoryPressureMonitor, PressureLevel

GIB = 1024**3
JOB: dict[str, Any] = {"model": "sentiment", "input": list(PROBE)}
EXPECTED = MODELS["sentiment"].predict(PROBE)


@pytest.fixture
def service(tmp_path, clock, fake_gpu):  # type: ignore[no-untyped-def]
    """The service on the test's virtual clock, its models on a simulated 80 GiB GPU."""
    monitor = MemoryPressureMonitor(clock=clock, cgroup_root=None, cooldown=30.0)
    made = ModelService(ModelRepository(MODELS), deadletter_path=tmp_path / "dead.db",
                        clock=clock, device=fake_gpu, ttl=300.0, monitor=monitor)
    yield made
    made.close()
    assert fake_gpu.device(0).used == 0                    # every model was unloaded


@pytest.fixture
def server(service):  # type: ignore[no-untyped-def]
    with ModelServer(service) as front:
        yield front
    assert not front.serving                               # stopped and joined


def predict(server: ModelServer, job: dict[str, Any] = JOB) -> tuple[int, Any]:
    """POST ``job`` to the server: (status, decoded JSON)."""
    return request(f"{server.url}/predict", body=job)


def test_predict_models_and_health_over_http(server, service, fake_gpu):  # type: ignore[no-untyped-def]
    assert predict(server) == (200, {"model": "sentiment", "output": EXPECTED})
    assert predict(server)[0] == 200                       # a cache hit, no second load
    assert service.models.stats().loads == 1
    assert fake_gpu.device(0).used == 4 * GIB
    assert request(f"{server.url}/models") == (200, {"loaded": ["sentiment"]})
    status, body = request(f"{server.url}/health")
    assert (status, body["status"]) == (200, "healthy")
    assert set(body["checks"]) == {"repository", "memory", "deadletters"}
    status, body = predict(server, {"model": "sentiment", "input": [1.0]})
    assert (status, body["error"]) == (400, "ValueError")  # a bad job is not dead-lettered
    assert predict(server, {"model": "nope", "input": []})[0] == 400
    assert len(service.deadletters) == 0


# -- load verification: a false "loaded" is caught and retried ------------------------

@pytest.mark.faults(Fault("model.weights", Action.returns((0.0, 0.0, 0.0, 0.0)),
                          Trigger.first(1)))
def test_false_loaded_model_is_rejected_and_reloaded(server, service, clock, history,  # type: ignore[no-untyped-def]
                                                     fake_gpu):
    assert predict(server) == (200, {"model": "sentiment", "output": EXPECTED})
    outcomes = [e.attrs["outcome"] for e in history.select(kind="retry.attempt")]
    assert outcomes == ["error", "ok"]                     # zeroed weights failed the probe
    assert "ModelLoadError" in history.select(kind="retry.attempt")[0].attrs["error"]
    assert service.repository.fetches == 2
    assert service.models.stats().loads == 1               # the false load was never cached
    assert fake_gpu.device(0).used == 4 * GIB              # and its memory was released
    assert clock.monotonic() == pytest.approx(0.5)         # one backoff, on virtual time
    check_retry(history, attempts=LOAD_ATTEMPTS, backoff=LOAD_BACKOFF, jitter="none").assert_ok()


def test_wrong_model_is_caught_by_the_probe(service, faults):  # type: ignore[no-untyped-def]
    other = MODELS["toxicity"].weights                     # another model's weights arrive
    faults.inject("model.weights", Action.returns(other))
    assert service.submit(JOB)[0] is None
    (job,) = service.deadletters.list()
    assert "failed its load verification probe" in job.error
    assert "sentiment" not in service.models


# -- dead-letter queue: a job whose model never loads is kept, then replayed ----------

def test_unloadable_model_dead_letters_the_job_and_replay_delivers_it(server, service,  # type: ignore[no-untyped-def]
                                                                      faults, fake_gpu,
                                                                      history):
    active = faults.inject("model.fetch", Action.raise_(ConnectionError("store down")))
    status, body = predict(server)
    assert (status, body["error"]) == (503, "model unavailable")
    job = service.deadletters.get(body["job_id"])
    assert job is not None
    assert (job.payload, job.attempts) == (JOB, LOAD_ATTEMPTS)
    assert "store down" in job.error
    assert fake_gpu.device(0).used == 0                    # nothing half-loaded stays
    status, health = request(f"{server.url}/health")
    assert (status, health["status"]) == (200, "degraded")  # non-critical: dead letters
    assert health["checks"]["deadletters"]["status"] == "unhealthy"

    status, replay = request(f"{server.url}/deadletters/replay", body={})
    assert (status, replay) == (200, {"replayed": [], "failed": [body["job_id"]]})
    assert service.deadletters.get(body["job_id"]).attempts == LOAD_ATTEMPTS + 1

    active.stop()                                          # the store is back
    status, replay = request(f"{server.url}/deadletters/replay", body={})
    assert (status, replay) == (200, {"replayed": [body["job_id"]], "failed": []})
    assert len(service.deadletters) == 0
    assert request(f"{server.url}/health")[1]["status"] == "healthy"
    kinds = [e.kind for e in history.select(kind="deadletter.")]
    assert kinds == ["deadletter.added", "deadletter.replayed"]


# -- TTL: a model expires on monotonic time and is reloaded ---------------------------

def test_model_expires_after_its_ttl_and_is_reloaded(server, service, clock, fake_gpu):  # type: ignore[no-untyped-def]
    assert predict(server)[0] == 200
    clock.advance(299.0)
    assert predict(server)[0] == 200
    assert service.models.stats().loads == 1               # still within the 300 s TTL
    clock.advance(301.0)
    assert predict(server) == (200, {"model": "sentiment", "output": EXPECTED})
    stats = service.models.stats()
    assert (stats.loads, stats.evictions) == (2, {"ttl": 1})
    assert fake_gpu.device(0).used == 4 * GIB              # unloaded once, loaded once


# -- memory pressure: LRU models are evicted and health degrades ----------------------

def test_memory_pressure_evicts_lru_models_and_health_recovers(server, service,  # type: ignore[no-untyped-def]
                                                               memory_pressure, fake_gpu,
                                                               history):
    for name in ("sentiment", "toxicity", "language"):
        assert predict(server, {"model": name, "input": list(PROBE)})[0] == 200
    assert predict(server)[0] == 200                       # sentiment is now most recent
    assert fake_gpu.device(0).used == 12 * GIB
    memory_pressure(90)                                    # host at 90%: CRITICAL
    assert service.monitor.check() is PressureLevel.CRITICAL
    assert service.models.keys() == ["language", "sentiment"]  # 30% freed: LRU first
    assert service.models.stats().evictions == {"pressure": 1}
    assert fake_gpu.device(0).used == 8 * GIB
    status, health = request(f"{server.url}/health")
    assert (status, health["status"]) == (200, "degraded")
    assert health["checks"]["memory"]["status"] == "unhealthy"

    memory_pressure(78)                                    # below 80% but inside hysteresis
    assert service.monitor.check() is PressureLevel.CRITICAL
    memory_pressure(50)
    assert service.monitor.check() is PressureLevel.NORMAL
    assert request(f"{server.url}/health")[1]["status"] == "healthy"
    assert predict(server, {"model": "toxicity", "input": list(PROBE)})[0] == 200  # reloaded
    check_eviction(history, source="models", pressure_level="critical").assert_ok()


def test_pressure_evictions_respect_the_cooldown(service, clock, memory_pressure):  # type: ignore[no-untyped-def]
    for name in ("sentiment", "toxicity", "language"):
        service.run({"model": name, "input": list(PROBE)})
    memory_pressure(96)                                    # EMERGENCY: free 50%
    service.monitor.check()
    assert len(service.models) == 1
    service.run({"model": "sentiment", "input": list(PROBE)})
    service.monitor.check()                                # within the 30 s cooldown
    assert len(service.models) == 2
    clock.advance(30.0)
    service.monitor.check()
    assert service.models.stats().evictions == {"pressure": 3}


# -- health: a critical check failing or hanging makes the server unhealthy -----------

def test_unreachable_repository_makes_health_unhealthy(server, faults):  # type: ignore[no-untyped-def]
    faults.inject("model.repository", Action.raise_(ConnectionError("no route")))
    status, body = request(f"{server.url}/health")
    assert (status, body["status"]) == (503, "unhealthy")
    assert "no route" in body["checks"]["repository"]["error"]


def test_hanging_repository_probe_times_out_on_virtual_time(server, faults, clock):  # type: ignore[no-untyped-def]
    faults.inject("model.repository", Action.delay(60.0))  # the probe hangs for a minute
    status, body = request(f"{server.url}/health")
    assert (status, body["status"]) == (503, "unhealthy")
    assert body["checks"]["repository"]["status"] == "timeout"
    assert clock.monotonic() == pytest.approx(2.0)         # gave up at its 2 s timeout


# -- SLA: prediction latency holds under each fault -----------------------------------

@pytest.fixture(params=["none", "false-loads", "memory-pressure", "ttl-expiry"])
def disturb(request, service, clock, faults, memory_pressure):  # type: ignore[no-untyped-def]
    """Arms one SLA variant's fault; the returned step is called every 10th prediction."""
    fault = request.param
    if fault == "false-loads":                             # each load's 1st try is false
        faults.activate([Fault("model.weights", Action.returns((0.0,) * 4), Trigger.nth(n))
                         for n in range(1, 20, 2)])

    def step() -> None:
        if fault == "memory-pressure":
            memory_pressure(96)
            service.monitor.check()                        # evicts half the models
            memory_pressure(40)
            service.monitor.check()
            clock.advance(30.0)                            # past the cooldown
        elif fault in ("ttl-expiry", "false-loads"):
            clock.advance(301.0)                           # past the 300 s TTL

    return step


@pytest.mark.sla("predict: p50<250ms", "predict: max<2s", "predict: error_rate<1%")
def test_predict_latency_budget_holds_under_each_fault(disturb, server, service, sla):  # type: ignore[no-untyped-def]
    for i in range(30):
        if i % 10 == 5:
            disturb()
        name = ("sentiment", "toxicity")[i % 2]
        with sla.measure("predict"):
            status, body = predict(server, {"model": name, "input": list(PROBE)})
        assert status == 200, body
    assert len(service.deadletters) == 0


# -- CLI-driven loads: what the model CLI says is checked with real requests ------------

@pytest.fixture
def cli(server, clock):  # type: ignore[no-untyped-def]
    """Loads through ``model_cli.py`` (a real child process that calls the server)."""
    return CliLoader(server.url, clock=clock)


def test_the_cli_loads_a_model_that_the_server_then_serves(cli, service, fake_gpu,  # type: ignore[no-untyped-def]
                                                           history):
    assert cli.load("sentiment") == "sentiment"
    assert service.loaded() == ["sentiment"]
    assert fake_gpu.device(0).used == 4 * GIB
    assert [e.attrs["outcome"] for e in history.select(kind="retry.attempt",
                                                       source="cli-load")] == ["ok"]


def test_a_false_loaded_from_the_cli_is_caught_and_the_load_retried(cli, service, clock,  # type: ignore[no-untyped-def]
                                                                     subprocess_faults,
                                                                     history):
    subprocess_faults.exits("model_cli.py", 0, stdout="loaded sentiment\n",
                            trigger=Trigger.first(1))      # says so, loads nothing
    assert cli.load("sentiment") == "sentiment"
    attempts = history.select(kind="retry.attempt", source="cli-load")
    assert [e.attrs["outcome"] for e in attempts] == ["error", "ok"]
    assert "said 'sentiment' was loaded, but the server does not serve it" in \
        attempts[0].attrs["error"]
    assert clock.monotonic() == pytest.approx(0.5)         # one backoff, virtual
    assert service.loaded() == ["sentiment"]               # loaded by the real CLI


def test_a_hanging_cli_times_out_on_virtual_time_every_attempt(cli, service, clock,  # type: ignore[no-untyped-def]
                                                                subprocess_faults,
                                                                fake_gpu):
    hang = subprocess_faults.hang("model_cli.py")
    with pytest.raises(RetryError) as caught:
        cli.load("sentiment")
    assert str(caught.value.last_exception) == (
        "the model CLI did not answer within 30s loading 'sentiment'; it was killed")
    assert hang.fired == CLI_ATTEMPTS
    backoffs = sum(CLI_BACKOFF.delay(n) for n in range(1, CLI_ATTEMPTS))
    assert clock.monotonic() == pytest.approx(CLI_ATTEMPTS * CLI_TIMEOUT + backoffs)
    assert service.loaded() == []
    assert fake_gpu.device(0).used == 0


@pytest.mark.parametrize("code", [0, 1])
def test_an_error_on_the_clis_stderr_fails_the_load_whatever_its_exit_status(  # type: ignore[no-untyped-def]
        cli, service, subprocess_faults, code):
    subprocess_faults.exits("model_cli.py", code, stdout="loaded sentiment\n",
                            stderr="warning: slow disk\nerror: CUDA out of memory\n")
    with pytest.raises(RetryError) as caught:
        cli.load("sentiment")
    assert str(caught.value.last_exception) == (
        f"the model CLI failed to load 'sentiment' (exit status {code}): "
        "error: CUDA out of memory")
    assert len(caught.value.attempts) == CLI_ATTEMPTS
    assert service.loaded() == []


def test_a_missing_cli_is_reported_at_once_not_retried(cli, subprocess_faults, clock):  # type: ignore[no-untyped-def]
    subprocess_faults.not_found("model_cli.py")
    with pytest.raises(CliMissing, match="the model CLI is not installed"):
        cli.load("sentiment")
    assert clock.monotonic() == 0.0
