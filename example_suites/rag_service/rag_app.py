"""A small retrieval service: HTTP front, Chroma store, cached embedder, flaky upstream.

``RagService`` holds the logic (ingest in a transaction, search, answer through an upstream
behind ``Retry`` + ``CircuitBreaker``, a ``TokenBucket`` per client); ``RagServer`` puts a
stdlib ``ThreadingHTTPServer`` in front of it and ``Upstream`` is the loopback "reranker"
it calls. Failpoints mark where production breaks: ``rag.embed`` and ``rag.upstream``.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from _support.loopback import JSONHandler, LoopbackServer

import faults
from pytest_resilience._backoff import Backoff
from pytest_resilience._breaker import CircuitBreaker
from pytest_resilience._clock import Clock, SystemClock
from pytest_resilience._errors import CircuitOpenError, RateLimitExceeded, RetryError
from pytest_resilience._ratelimit import TokenBucket
from pytest_resilience._retry import Retry
from pytest_resilience.chroma import transaction
from pytest_resilience.memory import ModelCache

EMBEDDER = "embedder"
EMBEDDER_BYTES = 2 * 1024**3  # what the embedder "weighs" on the device


class DeviceMemory(Protocol):
    """Where the embedder's weights live (a real allocator or ``faults.cuda.fake_gpu``)."""

    def allocate(self, key: str, nbytes: int | str, *, device: int = 0) -> None: ...

    def release(self, key: str, *, device: int = 0) -> int: ...


class HashingEmbedder:
    """A deterministic bag-of-words embedder: each token hashes to a signed dimension."""

    def __init__(self, dim: int = 16) -> None:
        self.dim = dim

    def embed(self, text: str) -> list[float]:
        faults.failpoint("rag.embed")
        vector = [0.0] * self.dim
        for token in text.lower().split():
            digest = hashlib.sha256(token.encode()).digest()
            vector[digest[0] % self.dim] += 1.0 if digest[1] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]


class Upstream(LoopbackServer):
    """The flaky dependency: a loopback HTTP server answering ``GET /rerank?q=...``."""

    def __init__(self) -> None:
        self.calls = 0
        outer = self

        class Handler(JSONHandler):
            def do_GET(self) -> None:
                outer.calls += 1
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                self.reply(200, {"answer": f"reranked:{query.get('q', [''])[0]}"})

        super().__init__(Handler)


BACKOFF = Backoff.exponential(base=0.1, max=1.0)


class UpstreamClient:
    """Calls ``GET {url}/rerank`` through ``Retry`` (3 attempts) and a ``CircuitBreaker``."""

    def __init__(self, url: str, *, timeout: float = 2.0, clock: Clock | None = None,
                 on_retry: Callable[[Any], object] | None = None,
                 breaker_recovery: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout
        clk: Clock = clock if clock is not None else SystemClock()
        self.breaker = CircuitBreaker(name="upstream", failure_threshold=3,
                                      recovery_timeout=breaker_recovery, clock=clk,
                                      expected=(OSError,))
        self.retry = Retry(attempts=3, backoff=BACKOFF, jitter="none", retry_on=(OSError,),
                           on_retry=on_retry, clock=clk, name="upstream")

    def _fetch(self, query: str) -> str:
        faults.failpoint("rag.upstream")
        url = f"{self.url}/rerank?q={urllib.parse.quote(query)}"
        with urllib.request.urlopen(url, timeout=self.timeout) as response:
            answer: str = json.loads(response.read())["answer"]
        return answer

    def answer(self, query: str) -> str:
        """The upstream's answer for ``query`` (``RetryError``/``CircuitOpenError`` if not)."""
        result: str = self.retry.call(self.breaker.call, self._fetch, query)
        return result


class RagService:
    """Documents in a Chroma collection, searched with a cached embedder."""

    def __init__(self, store: Path, *, upstream_url: str, clock: Clock | None = None,
                 device: DeviceMemory | None = None, upstream_timeout: float = 2.0,
                 rate: float = 100.0, burst: int = 20, cache_ttl: float = 600.0,
                 load_seconds: float = 0.0, breaker_recovery: float = 30.0,
                 client: Any = None) -> None:
        import chromadb

        self.store = store
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.device = device
        self.load_seconds = load_seconds  # what loading the embedder takes
        self.rate, self.burst = rate, burst
        self.client = client if client is not None else chromadb.PersistentClient(
            path=str(store))
        self.collection = self.client.get_or_create_collection(
            "docs", embedding_function=None, metadata={"hnsw:space": "cosine"})
        self.models = ModelCache(ttl=cache_ttl, clock=self.clock, on_evict=self._unload)
        self.upstream = UpstreamClient(upstream_url, timeout=upstream_timeout,
                                       clock=self.clock, breaker_recovery=breaker_recovery)
        self._buckets: dict[str, TokenBucket] = {}
        self._buckets_lock = threading.Lock()

    # -- the embedder, through the model cache ---------------------------------------
    def _load(self, key: object) -> HashingEmbedder:
        if self.device is not None:
            self.device.allocate(EMBEDDER, EMBEDDER_BYTES)
        self.clock.sleep(self.load_seconds)
        return HashingEmbedder()

    def _unload(self, key: object, _value: object) -> None:
        if self.device is not None:
            self.device.release(EMBEDDER)

    def embedder(self) -> HashingEmbedder:
        model: HashingEmbedder = self.models.get(EMBEDDER, self._load, size=EMBEDDER_BYTES)
        return model

    # -- documents -------------------------------------------------------------------
    def ingest(self, docs: dict[str, str], *, batch_size: int = 2) -> int:
        """Add ``docs`` (id → text) in batches, all or nothing: a failure rolls back."""
        embedder = self.embedder()
        items = list(docs.items())
        with transaction(self.collection) as tx:
            for start in range(0, len(items), batch_size):
                batch = items[start:start + batch_size]
                tx.add([i for i, _ in batch], [embedder.embed(t) for _, t in batch],
                       documents=[t for _, t in batch])
        return len(items)

    def count(self) -> int:
        return int(self.collection.count())

    def search(self, query: str, k: int = 3) -> list[str]:
        result = self.collection.query(query_embeddings=[self.embedder().embed(query)],
                                       n_results=min(k, max(self.count(), 1)))
        return list(result["ids"][0])

    def answer(self, query: str) -> str:
        """The upstream's answer for ``query``: retried, behind the breaker."""
        return self.upstream.answer(query)

    # -- rate limiting ---------------------------------------------------------------
    def admit(self, client: str) -> bool:
        with self._buckets_lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                bucket = self._buckets[client] = TokenBucket(
                    rate=self.rate, capacity=self.burst, clock=self.clock)
        return bucket.try_acquire()

    def close(self) -> None:
        """Drop the client and chroma's cache of it, so the files can be checked."""
        self.models.clear()
        self.client.clear_system_cache()


class RagServer(LoopbackServer):
    """``GET /search?q=&client=``, ``GET /answer?q=&client=``, ``POST /ingest`` (JSON)."""

    def __init__(self, service: RagService) -> None:
        self.service = service
        routes: dict[str, Callable[[dict[str, str]], object]] = {
            "/search": lambda q: {"ids": service.search(q["q"], int(q.get("k", "3")))},
            "/answer": lambda q: {"answer": service.answer(q["q"])},
        }

        class Handler(JSONHandler):
            def _handle(self, run: Callable[[], object]) -> None:
                client = self.headers.get("X-Client", "anonymous")
                if not service.admit(client):
                    self.reply(429, {"error": "rate limited", "client": client})
                    return
                try:
                    self.reply(200, run())
                except (CircuitOpenError, RetryError, RateLimitExceeded) as exc:
                    self.reply(503, {"error": type(exc).__name__})
                except Exception as exc:
                    self.reply(500, {"error": type(exc).__name__, "detail": str(exc)})

            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
                route = routes.get(parts.path)
                if route is None:
                    self.reply(404, {"error": "not found"})
                    return
                self._handle(lambda: route(query))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                docs = json.loads(self.rfile.read(length))
                self._handle(lambda: {"ingested": service.ingest(docs)})

        super().__init__(Handler)


CORPUS: dict[str, str] = {
    f"doc-{i}": text for i, text in enumerate([
        "retry with exponential backoff and jitter",
        "circuit breaker opens after consecutive failures",
        "token bucket rate limiting per client",
        "chroma persistent store with explicit embeddings",
        "model cache evicts the least recently used model",
        "gpu memory spike unloads models",
        "backups restore a corrupted store",
        "transactions roll back a failed ingest",
        "latency budgets on search p95",
        "clock skew and cache ttl",
    ])
}
