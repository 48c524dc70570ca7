"""HTTP faults through real clients (urllib, http.client, httpx) on loopback, in front of
an HTTP/1.1 keep-alive model server."""

from __future__ import annotations

import http.client
import importlib.util
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("h11", reason="faults.http needs h11 (the http extra)")

from faults import http as fh
from faults.http import HttpFaultProxy
from pytest_resilience import History, Retry, VirtualClock

HAS_HTTPX = importlib.util.find_spec("httpx") is not None


class Truncated(Exception):
    """The client saw a body shorter than announced (each client says so its own way)."""


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Client:
    """One HTTP client library, used the way an ML service's caller would."""

    name: str
    base: str
    state: dict[str, Any] = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes | None = None) -> Reply:
        return getattr(self, f"_{self.name}")(method, path, body)

    def _urllib(self, method: str, path: str, body: bytes | None) -> Reply:
        request = urllib.request.Request(self.base + path, data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                try:
                    data = response.read()
                except http.client.IncompleteRead as exc:
                    raise Truncated(exc.partial) from exc
                return Reply(response.status, dict(response.headers), data)
        except urllib.error.HTTPError as exc:
            with exc:
                return Reply(exc.code, dict(exc.headers), exc.read())

    def _http_client(self, method: str, path: str, body: bytes | None) -> Reply:
        conn = self.state.get("conn")
        if conn is None:  # one keep-alive connection for the whole test
            host, port = self.base.removeprefix("http://").split(":")
            conn = self.state["conn"] = http.client.HTTPConnection(host, int(port),
                                                                   timeout=10)
        conn.request(method, path, body=body)
        response = conn.getresponse()
        try:
            data = response.read()
        except http.client.IncompleteRead as exc:
            conn.close()
            self.state.pop("conn")
            raise Truncated(exc.partial) from exc
        return Reply(response.status, dict(response.getheaders()), data)

    def _httpx(self, method: str, path: str, body: bytes | None) -> Reply:
        import httpx

        client = self.state.get("client")
        if client is None:
            client = self.state["client"] = httpx.Client(base_url=self.base, timeout=10)
        try:
            response = client.request(method, path, content=body)
        except httpx.RemoteProtocolError as exc:
            raise Truncated(str(exc)) from exc
        return Reply(response.status_code, dict(response.headers), response.content)

    def close(self) -> None:
        for key in ("conn", "client"):
            if key in self.state:
                self.state.pop(key).close()


CLIENTS = ["urllib", "http_client",
           pytest.param("httpx", marks=pytest.mark.skipif(not HAS_HTTPX,
                                                          reason="httpx is not installed"))]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def history() -> History:
    return History()


@pytest.fixture
def proxy(model: Any, clock: VirtualClock, history: History) -> Iterator[HttpFaultProxy]:
    with HttpFaultProxy(model.address, name="model", seed=3, clock=clock,
                        history=history) as p:
        yield p


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest, proxy: HttpFaultProxy) -> Iterator[Client]:
    c = Client(request.param, proxy.url)
    yield c
    c.close()


def header(reply: Reply, name: str) -> str | None:
    return next((v for k, v in reply.headers.items() if k.lower() == name.lower()), None)


# -- each fault, with each client -------------------------------------------------------------
def test_abort_answers_503_without_reaching_the_upstream(client: Client, proxy: HttpFaultProxy,
                                                         model: Any) -> None:
    with proxy.add_fault(fh.abort(503), path="/v1/predict"):
        reply = client.request("POST", "/v1/predict", b'{"x": 1}')
    assert reply.status == 503
    assert reply.body == b"503 Service Unavailable (injected by pytest-resilience)\n"
    assert model.requests == []
    assert client.request("POST", "/v1/predict", b"{}").status == 200


def test_abort_429_carries_retry_after(client: Client, proxy: HttpFaultProxy) -> None:
    with proxy.add_fault(fh.abort(429, retry_after=2)):
        reply = client.request("GET", "/v1/models")
    assert (reply.status, header(reply, "Retry-After")) == (429, "2")


def test_delay_holds_the_request_before_the_upstream_sees_it(
        client: Client, proxy: HttpFaultProxy, clock: VirtualClock, model: Any) -> None:
    with proxy.add_fault(fh.delay(250), methods=["POST"]):
        start = clock.monotonic()
        reply = client.request("POST", "/v1/predict", b"{}")
        took = clock.monotonic() - start
    assert reply.status == 200
    assert took == pytest.approx(0.25)
    assert model.requests == [("POST", "/v1/predict")]


def test_replace_body_sends_the_given_body_with_a_matching_length(
        client: Client, proxy: HttpFaultProxy) -> None:
    with proxy.add_fault(fh.replace_body(b'{"error": "model drift"}',
                                         content_type="application/problem+json")):
        reply = client.request("GET", "/v1/predict")
    assert reply.body == b'{"error": "model drift"}'
    assert header(reply, "Content-Length") == "24"
    assert header(reply, "Content-Type") == "application/problem+json"
    assert header(reply, "X-Model") == "m1"


def test_truncate_body_cuts_the_response_and_the_client_notices(
        client: Client, proxy: HttpFaultProxy) -> None:
    with proxy.add_fault(fh.truncate_body(10)), pytest.raises(Truncated):
        client.request("GET", "/big")
    assert len(client.request("GET", "/big").body) == 256 * 400


def test_drop_header_removes_one_response_header(client: Client,
                                                 proxy: HttpFaultProxy) -> None:
    with proxy.add_fault(fh.drop_header("x-model")):
        reply = client.request("GET", "/v1/predict")
    assert header(reply, "X-Model") is None
    assert header(reply, "Content-Type") == "application/json"


def test_a_chunked_upstream_body_passes_and_truncates(client: Client,
                                                      proxy: HttpFaultProxy) -> None:
    assert client.request("GET", "/chunked").body == b"alpha-beta-gamma"
    with proxy.add_fault(fh.truncate_body(8)), pytest.raises(Truncated):
        client.request("GET", "/chunked")


# -- selection ------------------------------------------------------------------------------
def test_faults_select_by_path_glob_and_method(proxy: HttpFaultProxy) -> None:
    client = Client("http_client", proxy.url)
    proxy.add_fault(fh.abort(503), path="/v1/*", methods=["POST"])
    try:
        statuses = [client.request(m, p, b"{}" if m == "POST" else None).status
                    for m, p in [("POST", "/v1/predict"), ("GET", "/v1/predict"),
                                 ("POST", "/v2/predict"), ("POST", "/v1/embed?x=1")]]
    finally:
        client.close()
    assert statuses == [503, 200, 200, 503]


def statuses(model: Any, seed: int, rate: float, n: int = 40) -> list[int]:
    with HttpFaultProxy(model.address, seed=seed, clock=VirtualClock()) as proxy:
        proxy.add_fault(fh.abort(503), rate=rate)
        client = Client("http_client", proxy.url)
        try:
            return [client.request("GET", f"/r{i}").status for i in range(n)]
        finally:
            client.close()


def test_rate_draws_each_request_from_the_seeded_rng(model: Any) -> None:
    first = statuses(model, seed=1, rate=0.5)
    assert 10 <= first.count(503) <= 30
    assert statuses(model, seed=1, rate=0.5) == first
    assert statuses(model, seed=2, rate=0.5) != first
    assert set(statuses(model, seed=1, rate=0.0, n=5)) == {200}


def test_times_fails_the_first_requests_and_a_retry_recovers(
        proxy: HttpFaultProxy, clock: VirtualClock, history: History) -> None:
    """Toxiproxy #404: "fail the first two requests" — the retry story in one line."""
    handle = proxy.add_fault(fh.abort(503, retry_after=1), times=2)

    def predict() -> bytes:
        try:
            with urllib.request.urlopen(f"{proxy.url}/v1/predict", timeout=10) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            exc.close()
            raise ConnectionError(f"HTTP {exc.code}") from None

    retry = Retry(attempts=4, retry_on=ConnectionError, clock=clock, name="predict", seed=1)
    assert retry.call(predict).startswith(b'{"path": "/v1/predict"')
    assert handle.fired == 2
    assert [e.attrs["status"] for e in history.select("http.request")] == [503, 503, 200]


# -- protocol -------------------------------------------------------------------------------
def test_keep_alive_serves_many_requests_over_one_connection_each_side(
        proxy: HttpFaultProxy, model: Any) -> None:
    client = Client("http_client", proxy.url)
    proxy.add_fault(fh.abort(503), path="/fail")
    try:
        got = [client.request("GET", p).status for p in ("/a", "/fail", "/b", "/fail", "/c")]
        assert client.request("HEAD", "/d").body == b""
    finally:
        client.close()
    assert got == [200, 503, 200, 503, 200]
    assert proxy.stats().connections == 1
    assert model.connections == 1
    assert len(model.requests) == 4


def test_events_say_what_each_fault_did(client: Client, proxy: HttpFaultProxy,
                                        history: History) -> None:
    with proxy.add_fault(fh.abort(503), path="/x", name="outage"):
        client.request("GET", "/x")
        client.request("GET", "/y")
    fault_events = [(e.kind, e.attrs["family"], e.attrs["fault"])
                    for e in history.select("fault.")]
    assert fault_events == [("fault.armed", "http", "outage"), ("fault.fired", "http", "outage"),
                            ("fault.disarmed", "http", "outage")]
    fired = history.select("fault.fired")[0].attrs
    assert (fired["action"], fired["trigger"], fired["method"], fired["path"]) == (
        "abort(status=503)", "* /x", "GET", "/x")
    requests = [(e.attrs["path"], e.attrs["status"], e.attrs["faults"], e.attrs["outcome"])
                for e in history.select("http.request")]
    assert requests == [("/x", 503, ["outage"], "aborted"), ("/y", 200, [], "ok")]


def test_an_upstream_that_refuses_is_refused_again(closed_port: int) -> None:
    clock = VirtualClock()
    history = History()
    with HttpFaultProxy(("127.0.0.1", closed_port), clock=clock, history=history) as proxy:
        with pytest.raises(OSError) as first:
            urllib.request.urlopen(proxy.url, timeout=10)
        with pytest.raises(urllib.error.URLError) as later:
            urllib.request.urlopen(proxy.url, timeout=10)
    assert "reset" in str(first.value).lower() or isinstance(first.value, ConnectionError)
    assert isinstance(later.value.reason, ConnectionRefusedError)
    assert [e.attrs["state"] for e in history.select("proxy.upstream")] == ["refused"]


# -- arguments ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fh.abort(200), "status=200 is not an error status. Pass an int from 400 to "
         "599, such as 503 or 429."),
        (lambda: fh.abort(503, retry_after=-1), "retry_after=-1 is not valid. Pass whole "
         "seconds >= 0, or None for no Retry-After header."),
        (lambda: fh.delay(float("nan")), "ms=nan is not a valid duration. Pass a finite "
         "number of milliseconds >= 0."),
        (lambda: fh.truncate_body(-1), "nbytes=-1 is not valid. Pass an integer >= 0."),
        (lambda: fh.drop_header("Bad Header"), "name='Bad Header' is not a header name. Pass "
         "a token such as 'Content-Type'."),
        (lambda: fh.replace_body(b"x", content_type=""), "content_type='' is not valid. Pass "
         "a media type such as 'application/json', or None to keep the upstream's."),
    ],
)
def test_bad_fault_arguments_name_the_fix(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "v1"}, "path='v1' is not a path pattern. Pass a glob on the path without "
         "its query, such as '/v1/predict' or '/v1/*'."),
        ({"methods": ["GET", 1]}, "methods=['GET', 1] is not a list of HTTP methods. Pass "
         "e.g. ['GET', 'POST'], or None for any method."),
        ({"rate": 2}, "rate=2 is not a probability. Pass a number in [0, 1]."),
        ({"times": 0}, "times=0 is not valid. Pass an integer >= 1, or None for no limit."),
    ],
)
def test_bad_selectors_name_the_fix(proxy: HttpFaultProxy, kwargs: dict[str, Any],
                                    message: str) -> None:
    with pytest.raises(ValueError) as info:
        proxy.add_fault(fh.abort(), **kwargs)
    assert str(info.value) == message


class _NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: fh.abort(_NoRepr()), ValueError,  # type: ignore[arg-type]
         "status=<_NoRepr instance> is not an error status. Pass an int from 400 to 599, "
         "such as 503 or 429."),
        (lambda: fh.delay(10**400), ValueError, "ms=<int of 1329 bits> is not a valid "
         "duration. Pass a finite number of milliseconds >= 0."),
        (lambda: fh.delay(None), TypeError, "ms=None is not a valid duration. Pass a "  # type: ignore[arg-type]
         "finite number of milliseconds >= 0."),
        (lambda: fh.HttpFaultProxy(_NoRepr(), name="x"), ValueError,  # type: ignore[arg-type]
         "upstream=<_NoRepr instance> is not an address. Pass a (host, port) tuple such as "
         "('127.0.0.1', 8080)."),
    ],
)
def test_hostile_arguments_are_refused_by_name(call: Callable[[], object],
                                               error: type[Exception], message: str) -> None:
    """Found by fuzzing: a value whose repr raises, or an int too big for a float,
    escaped as RuntimeError or OverflowError."""
    with pytest.raises(error) as info:
        call()
    assert re.sub(r" at 0x[0-9a-f]+", "", str(info.value)) == message


def test_a_fault_name_must_be_a_string(proxy: HttpFaultProxy) -> None:
    with pytest.raises(TypeError) as info:
        proxy.add_fault(fh.abort(), name=["x"])  # type: ignore[arg-type]
    assert str(info.value) == ("name=['x'] is not a fault name. Pass a non-empty string, or "
                               "None for the fault's kind.")
    with pytest.raises(TypeError) as info:
        proxy.add_fault(fh.abort(), rate=None)  # type: ignore[arg-type]
    assert str(info.value) == "rate=None is not a probability. Pass a number in [0, 1]."


def test_names_are_unique_and_removal_is_checked(proxy: HttpFaultProxy) -> None:
    proxy.add_fault(fh.delay(1))
    with pytest.raises(ValueError, match=r"name='delay' is already installed"):
        proxy.add_fault(fh.delay(2))
    with pytest.raises(KeyError, match="no fault named 'nope'"):
        proxy.remove_fault("nope")
    with pytest.raises(TypeError, match="is not an HttpFault"):
        proxy.add_fault("abort")  # type: ignore[arg-type]
    proxy.reset()
    assert proxy.faults == {}
