"""The RAG service's resilience suite: one or two tests per fault family, each asserting
what the service does under the fault (see README.md in this directory)."""

from __future__ import annotations

import contextlib

import pytest
from _support.loopback import request
from rag_app import (
    BACKOFF,
    CORPUS,
    EMBEDDER,
    RagServer,
    RagService,
    Upstream,
    UpstreamClient,
)

import faults
from faults import Action, Fault, Trigger, network
from faults import clock as clock_faults
from faults.chroma import corrupt, fail_during
from faults.cuda import cuda_spike
from faults.families import clock_skews
from pytest_resilience import BudgetExceeded
from pytest_resilience._errors import CircuitOpenError, FaultInjected, RetryError
from pytest_resilience.checks import check_retry, check_rollback, snapshot
from pytest_resilience.chroma import BackupManager, verify_store
from pytest_resilience.memory import GPUMonitor


@pytest.fixture
def upstream():  # type: ignore[no-untyped-def]
    with Upstream() as server:
        yield server
    assert not server.serving                              # stopped and joined


@pytest.fixture
def proxy(fault_proxy, upstream):  # type: ignore[no-untyped-def]
    return fault_proxy(upstream.address, name="upstream")


@pytest.fixture
def make_service(tmp_path, clock, proxy):  # type: ignore[no-untyped-def]
    made: list[RagService] = []

    def make(**options):  # type: ignore[no-untyped-def]
        options.setdefault("upstream_timeout", 0.05)
        service = RagService(tmp_path / "store", upstream_url=proxy.url, clock=clock,
                             **options)
        if service.count() == 0:
            service.ingest(CORPUS)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


@pytest.fixture
def service(make_service):  # type: ignore[no-untyped-def]
    return make_service()


@pytest.fixture
def gpu_service(make_service, fake_gpu):  # type: ignore[no-untyped-def]
    """The service with its embedder on a simulated 80 GiB GPU and a 5 s cache TTL."""
    return make_service(device=fake_gpu, cache_ttl=5.0)


@pytest.fixture
def server(service):  # type: ignore[no-untyped-def]
    with RagServer(service) as front:
        yield front
    assert not front.serving                               # stopped and joined


def test_search_and_answer_over_http(server, upstream):  # type: ignore[no-untyped-def]
    status, body = request(f"{server.url}/search?q=circuit+breaker+failures&k=2")
    assert status == 200
    assert body["ids"][0] == "doc-1"
    status, body = request(f"{server.url}/answer?q=hello")
    assert (status, body) == (200, {"answer": "reranked:hello"})
    assert upstream.calls == 1


# -- network: upstream latency and timeouts through the fault proxy -------------------

def test_upstream_timeout_is_retried_until_the_toxic_is_removed(proxy, clock, history):  # type: ignore[no-untyped-def]
    toxic = proxy.add_toxic(network.timeout(0))           # upstream goes silent
    client = UpstreamClient(proxy.url, timeout=0.05, clock=clock,
                            on_retry=lambda state: toxic.remove())
    assert client.answer("q") == "reranked:q"             # attempt 2 succeeds
    outcomes = [e.attrs["outcome"] for e in history.select(kind="retry.attempt")]
    assert outcomes == ["error", "ok"]
    assert clock.monotonic() == pytest.approx(0.1)        # one backoff, on virtual time
    check_retry(history, attempts=3, backoff=BACKOFF, jitter="none").assert_ok()


def test_slow_upstream_gives_503_then_recovers(server, proxy, clock):  # type: ignore[no-untyped-def]
    with proxy.add_toxic(network.latency(150)):           # slower than the 50 ms timeout
        status, body = request(f"{server.url}/answer?q=slow")
        assert (status, body["error"]) == (503, "RetryError")  # 3 attempts timed out
    status, body = request(f"{server.url}/answer?q=fast")
    assert (status, body["error"]) == (503, "CircuitOpenError")  # 3 failures opened it
    clock.advance(30.0)                                   # recovery timeout, virtual
    status, body = request(f"{server.url}/answer?q=fast")
    assert (status, body) == (200, {"answer": "reranked:fast"})


def test_breaker_opens_on_a_down_upstream_and_half_opens_later(server, proxy, upstream,  # type: ignore[no-untyped-def]
                                                              clock):
    with proxy.down():
        assert request(f"{server.url}/answer?q=a")[1]["error"] == "RetryError"
        status, body = request(f"{server.url}/answer?q=b")  # refused without a call
        assert (status, body["error"]) == (503, "CircuitOpenError")
    calls = upstream.calls
    assert request(f"{server.url}/answer?q=c")[1]["error"] == "CircuitOpenError"
    assert upstream.calls == calls                        # the breaker shielded upstream
    clock.advance(30.0)                                   # recovery timeout, virtual
    assert request(f"{server.url}/answer?q=d") == (200, {"answer": "reranked:d"})


# -- rate limiting per client ----------------------------------------------------------

def test_each_client_has_its_own_token_bucket(make_service, clock):  # type: ignore[no-untyped-def]
    with RagServer(make_service(rate=1.0, burst=3)) as front:
        url = f"{front.url}/search?q=retry"
        assert [request(url, client="alice")[0] for _ in range(4)] == [200, 200, 200, 429]
        assert request(url, client="bob")[0] == 200       # bob is not throttled by alice
        clock.advance(1.0)                                # one token refilled
        assert request(url, client="alice")[0] == 200


# -- CUDA: a memory spike evicts the embedder; the next search reloads it --------------

@pytest.mark.fake_gpu(total="10GiB")
def test_cuda_spike_evicts_the_embedder_and_search_reloads_it(make_service, fake_gpu,  # type: ignore[no-untyped-def]
                                                             clock, history):
    service = make_service(device=fake_gpu)
    assert fake_gpu.device(0).used == 2 * 1024**3          # the embedder is on the GPU
    monitor = GPUMonitor(cache=service.models, clock=clock)
    with cuda_spike(0, "7GiB", clock=clock):               # 9 of 10 GiB: CRITICAL
        monitor.check()
        assert EMBEDDER not in service.models
        assert fake_gpu.device(0).used == 7 * 1024**3      # its memory was released
    assert service.search("gpu memory spike")[0] == "doc-5"  # reloaded on demand
    stats = service.models.stats()
    assert stats.evictions == {"gpu": 1}
    assert stats.loads == 2
    assert [e.attrs["cause"] for e in history.select(kind="cache.evict")] == ["gpu"]


# -- clock skew: the cache TTL follows monotonic time, not wall time -------------------

def test_cache_ttl_ignores_wall_steps_and_expires_on_monotonic_time(make_service, clock):  # type: ignore[no-untyped-def]
    service = make_service(cache_ttl=60.0)
    with clock_faults.skew(-3600, clock=clock):            # NTP steps wall time back 1 h
        service.search("retry")
    assert service.models.stats().loads == 1               # still the same embedder
    with clock_faults.skew(61, target="monotonic", clock=clock):
        service.search("retry")
    assert service.models.stats().loads == 2               # TTL passed: reloaded


# -- chroma: a failed ingest rolls back; corruption is caught and restored -------------

@pytest.mark.faults(Fault("rag.embed", Action.raise_(), Trigger.nth(3)))
def test_failed_ingest_over_http_is_rolled_back(server, service, history):  # type: ignore[no-untyped-def]
    before = snapshot(service.collection)
    new = {f"new-{i}": f"fresh document number {i}" for i in range(5)}
    status, body = request(f"{server.url}/ingest", body=new)
    assert (status, body["error"]) == (500, "FaultInjected")
    after = snapshot(service.collection)
    check_rollback(before, after, history=history).assert_ok()
    assert service.count() == len(CORPUS)
    (rollback,) = history.select(kind="chroma.rollback")
    assert rollback.attrs["ids"] == 2                      # the two docs added before it
    assert rollback.attrs["unrestored"] == 0


def test_write_failing_part_way_is_rolled_back(service, history):  # type: ignore[no-untyped-def]
    before = snapshot(service.collection)
    new = {f"new-{i}": f"fresh document number {i}" for i in range(5)}
    with fail_during(service.collection, "add", after=3) as stats, \
            pytest.raises(FaultInjected):
        service.ingest(new)                                # batch 2 lands 1 of 2, then fails
    assert stats["written"] == 3
    check_rollback(before, snapshot(service.collection), history=history).assert_ok()
    (rollback,) = history.select(kind="chroma.rollback")
    assert rollback.attrs["ids"] == 4                      # both batches, the partial one too
    assert service.count() == len(CORPUS)


def test_corruption_is_caught_and_restored_from_backup(make_service, tmp_path):  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    make_service().close()
    manager = BackupManager(store, directory=tmp_path / "backups")
    manager.create()                                       # backs up and seals the store
    assert verify_store(store).ok
    corrupt(store, "sqlite-bitflip", seed=1)               # bits flipped in `embeddings`
    assert not verify_store(store).ok                      # the seal and SQLite catch it
    manager.restore()
    assert verify_store(store).ok
    service = make_service()
    assert service.count() == len(CORPUS)                  # zero records lost
    assert service.search("backups restore a corrupted store")[0] == "doc-6"


# -- SLA: a budget on search latency, healthy and under each fault -------------------

@pytest.mark.parametrize("fault", ["none", "slow-upstream", "gpu-eviction", "ttl-expiry"])
@pytest.mark.sla("search: p50<250ms", "search: max<2s", "search: error_rate<1%")
def test_search_latency_budget_holds_under_each_fault(fault, gpu_service, proxy, clock, sla):  # type: ignore[no-untyped-def]
    service = gpu_service
    monitor = GPUMonitor(cache=service.models, clock=clock)
    if fault == "slow-upstream":
        proxy.add_toxic(network.latency(20))               # search must not depend on it
    with RagServer(service) as front:
        for i in range(40):
            if i % 10 == 5 and fault == "gpu-eviction":
                with cuda_spike(0, "71GiB", clock=clock):  # 73 of 80 GiB: CRITICAL
                    monitor.check()                         # evicts the embedder
            elif i % 10 == 5 and fault == "ttl-expiry":
                clock.advance(6.0)                          # past the 5 s TTL
            with sla.measure("search"):
                status, body = request(f"{front.url}/search?q=query+{i}", client=f"c{i % 4}")
            assert status == 200
            assert len(body["ids"]) == 3
    reloads = 4 if fault in ("gpu-eviction", "ttl-expiry") else 0
    assert service.models.stats().loads == 1 + reloads     # each eviction cost one reload


# -- chaos: generated fault plans against retry + breaker ------------------------------

@pytest.mark.chaos(
    failpoints={"rag.upstream": [Action.raise_(ConnectionError("reset"))]},
    families=["clock"], horizon=1.0,
    checks=[lambda h: check_retry(h, attempts=3, backoff=BACKOFF, jitter="none")],
    allow=[RetryError, CircuitOpenError],
    must_fire=["rag.upstream"], max_examples=25,
    # the coverage matrix (answer x failpoint/clock x retry checker) must be filled in:
    require_coverage=[("answer", "failpoint", "retry"), ("answer", "clock", "retry")],
)
def test_answers_survive_generated_upstream_faults(chaos, upstream):  # type: ignore[no-untyped-def]
    host, port = upstream.address
    client = UpstreamClient(f"http://{host}:{port}", clock=chaos.clock)
    chaos.clock.sleep(1.0)                                 # the plan's clock faults apply
    with chaos.measure("answer"):
        assert client.answer("q") == "reranked:q"
    chaos.sometimes(True, "answered")


# -- recovery: back inside the budget within 15 s of the end of an outage -----------------

@pytest.mark.parametrize("breaker_recovery", [
    10.0,
    pytest.param(60.0, marks=pytest.mark.xfail(
        strict=True, raises=BudgetExceeded,
        reason="a breaker that stays open 60 s keeps answers failing 56 s after the outage")),
])
@pytest.mark.sla("answer: error_rate<25%", recovery="15s", clock="virtual")
def test_answers_recover_within_15s_of_an_outage(breaker_recovery, upstream, clock, sla):  # type: ignore[no-untyped-def]
    host, port = upstream.address
    client = UpstreamClient(f"http://{host}:{port}", clock=clock,
                            breaker_recovery=breaker_recovery)

    def ask(calls: int) -> None:
        for i in range(calls):
            with contextlib.suppress(RetryError, CircuitOpenError), sla.measure("answer"):
                client.answer(f"q{i}")
            clock.sleep(1.0)

    ask(100)                                               # healthy
    with faults.inject("rag.upstream", Action.raise_(ConnectionError("reset")), clock=clock):
        ask(3)                                             # a 3 s outage opens the breaker
    ask(200)                                               # until it half-opens: fail fast


# -- adversarial search: the cheapest faults that break search p95 ------------------------

def search_traffic(chaos, service, **config):  # type: ignore[no-untyped-def]
    """Ten searches, 250 ms apart, through a service (on the plan's clock, sharing the
    ingested store's client) whose embedder takes 250 ms to load."""
    service = RagService(service.store, upstream_url=service.upstream.url, clock=chaos.clock,
                         client=service.client, load_seconds=0.25, **config)
    service.search("warm up")                              # the embedder loads first
    for i in range(10):
        with chaos.measure("search"):
            service.search(f"query {i}")
        chaos.clock.sleep(0.25)


SEARCH = {"families": [clock_skews(max_seconds=60)], "horizon": 2.0,
          "maximize": "search: p95<200ms", "max_examples": 30}


@pytest.mark.xfail(strict=True, reason="fragile on purpose: a 5 s embedder TTL; a clock jump "
                   "expires it mid-traffic and the 250 ms reload breaks search p95")
@pytest.mark.chaos(**SEARCH)
def test_search_finds_the_cheapest_plan_breaking_p95_on_a_fragile_config(chaos, service):  # type: ignore[no-untyped-def]
    search_traffic(chaos, service, cache_ttl=5.0)


@pytest.mark.chaos(**SEARCH)
def test_the_production_config_survives_the_same_search(chaos, service):  # type: ignore[no-untyped-def]
    search_traffic(chaos, service, cache_ttl=600.0)
