"""A small model server: verified loads into a TTL cache, pressure eviction, dead letters.

``ModelRepository`` holds the model artifacts (weights and a checksum manifest);
``ModelService`` loads them through ``Retry`` into a ``ModelCache`` whose ``verify``
probe rejects a false "loaded" (weights that do not match the manifest or a probe input
that does not give the expected output), registers the cache with a
``MemoryPressureMonitor``, dead-letters a job whose model cannot be loaded into a
``DeadLetterQueue`` and reports a ``HealthRegistry``. ``ModelServer`` is the stdlib HTTP
front on 127.0.0.1. Failpoints mark where production breaks: ``model.fetch`` (the
repository is unreachable), ``model.weights`` (what a load returns) and
``model.repository`` (the health probe of the repository).
"""

from __future__ import annotations

import hashlib
import json
import struct
import urllib.parse
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from _support.loopback import JSONHandler, LoopbackServer

import faults
from pytest_resilience import (
    Backoff,
    Clock,
    DeadLetterQueue,
    HealthRegistry,
    HealthReport,
    Retry,
    RetryError,
    SystemClock,
)
from pytest_resilience.memory import (
    MemoryPressureMonitor,
    ModelCache,
    ModelLoadError,
    PressureLevel,
)

LOAD_BACKOFF = Backoff.exponential(base=0.5, max=4.0)
LOAD_ATTEMPTS = 3
PROBE = (1.0, -2.0, 0.5, 3.0)  # the verification probe's input


class DeviceMemory(Protocol):
    """Where model weights live (a real allocator or ``faults.cuda.fake_gpu``)."""

    def allocate(self, key: str, nbytes: int | str, *, device: int = 0) -> None: ...

    def release(self, key: str, *, device: int = 0) -> int: ...


def checksum(weights: tuple[float, ...]) -> str:
    """The manifest checksum of a weight vector."""
    return hashlib.sha256(struct.pack(f"{len(weights)}d", *weights)).hexdigest()


@dataclass(frozen=True, slots=True)
class Artifact:
    """A stored model: weights, bias, its manifest checksum and its size on the device."""

    weights: tuple[float, ...]
    bias: float
    nbytes: int

    @property
    def checksum(self) -> str:
        return checksum(self.weights)

    def predict(self, inputs: tuple[float, ...]) -> float:
        return sum(w * x for w, x in zip(self.weights, inputs, strict=True)) + self.bias


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """What a load produced; it claims to be ``name``, which ``verify`` checks."""

    name: str
    weights: tuple[float, ...]
    bias: float

    def predict(self, inputs: tuple[float, ...]) -> float:
        if len(inputs) != len(self.weights):
            raise ValueError(f"model {self.name!r} takes {len(self.weights)} inputs, "
                             f"got {len(inputs)}")
        return sum(w * x for w, x in zip(self.weights, inputs, strict=True)) + self.bias


class ModelRepository:
    """Model artifacts by name (the object store a real server downloads from)."""

    def __init__(self, artifacts: dict[str, Artifact]) -> None:
        self.artifacts = dict(artifacts)
        self.fetches = 0

    def fetch(self, name: str) -> LoadedModel:
        """Download ``name``; what arrives is not checked here (``verify`` does that)."""
        faults.failpoint("model.fetch")
        self.fetches += 1
        artifact = self.artifacts[name]
        weights = faults.failpoint("model.weights", default=artifact.weights)
        return LoadedModel(name, tuple(weights), artifact.bias)

    async def ping(self) -> bool:
        """The repository's health probe."""
        await faults.afailpoint("model.repository")
        return True


class ModelService:
    """Predictions from cached, verified models; failed jobs go to a dead-letter queue."""

    def __init__(self, repository: ModelRepository, *, deadletter_path: Path,
                 clock: Clock | None = None, device: DeviceMemory | None = None,
                 ttl: float = 300.0, monitor: MemoryPressureMonitor | None = None,
                 deadletter_warn: int = 1, check_timeout: float = 2.0) -> None:
        self.repository = repository
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.device = device
        self.models = ModelCache(ttl=ttl, clock=self.clock, verify=self._verify,
                                 on_evict=self._unload, name="models")
        self.monitor = monitor if monitor is not None else MemoryPressureMonitor(clock=self.clock)
        self.monitor.register(self.models)
        self.load_retry = Retry(attempts=LOAD_ATTEMPTS, backoff=LOAD_BACKOFF, jitter="none",
                                retry_on=(ModelLoadError, ConnectionError), clock=self.clock,
                                name="model-load")
        self.deadletters = DeadLetterQueue(deadletter_path, name="jobs", clock=self.clock)
        self.deadletter_warn = deadletter_warn
        self.health = HealthRegistry(clock=self.clock)
        self.health.register("repository", self.repository.ping, timeout=check_timeout)
        self.health.register("memory", self._memory_ok, timeout=check_timeout, critical=False)
        self.health.register("deadletters", self._deadletters_ok, timeout=check_timeout,
                             critical=False)

    # -- loading ---------------------------------------------------------------------
    def _load(self, key: Hashable) -> LoadedModel:
        name = str(key)
        model = self.repository.fetch(name)
        if self.device is not None:
            self.device.allocate(name, self.repository.artifacts[name].nbytes)
        return model

    def _verify(self, key: Hashable, value: Any) -> bool:
        """A load counts only if the weights match the manifest and the probe answers."""
        artifact = self.repository.artifacts[str(key)]
        return (isinstance(value, LoadedModel) and value.name == key
                and checksum(value.weights) == artifact.checksum
                and value.predict(PROBE) == artifact.predict(PROBE))

    def _unload(self, key: Hashable, _value: object) -> None:
        if self.device is not None:
            self.device.release(str(key))

    def _get_once(self, name: str) -> LoadedModel:
        try:
            model: LoadedModel = self.models.get(
                name, self._load, size=self.repository.artifacts[name].nbytes)
        except ModelLoadError:
            self._unload(name, None)  # a rejected load must not keep its device memory
            raise
        return model

    def model(self, name: str) -> LoadedModel:
        """``name`` from the cache, loaded and verified (retried) on a miss."""
        if name not in self.repository.artifacts:
            raise KeyError(name)
        model: LoadedModel = self.load_retry.call(self._get_once, name)
        return model

    def load(self, name: str) -> str:
        """Load ``name`` now, verified (what the CLI's ``load`` asks for)."""
        return self.model(name).name

    def loaded(self) -> list[str]:
        """Names of the cached models, least recently used first."""
        return list(map(str, self.models.keys()))

    # -- jobs ------------------------------------------------------------------------
    def run(self, job: dict[str, Any]) -> float:
        """The prediction for ``job`` (``{"model": name, "input": [floats]}``)."""
        return self.model(job["model"]).predict(tuple(float(x) for x in job["input"]))

    def submit(self, job: dict[str, Any]) -> tuple[float | None, str | None]:
        """Run ``job``: ``(output, None)``, or ``(None, job_id)`` once dead-lettered."""
        try:
            return self.run(job), None
        except RetryError as exc:
            return None, self.deadletters.add(job, error=exc.last_exception or exc,
                                              attempts=len(exc.attempts))

    def replay_deadletters(self) -> dict[str, list[str]]:
        """Re-run every dead-lettered job; delivered ones leave the queue."""
        result = self.deadletters.replay(self.run)
        return {"replayed": list(result.replayed), "failed": list(result.failed)}

    # -- health ----------------------------------------------------------------------
    async def _memory_ok(self) -> bool:
        return self.monitor.level < PressureLevel.CRITICAL

    async def _deadletters_ok(self) -> bool:
        return len(self.deadletters) < self.deadletter_warn

    def close(self) -> None:
        """Unload every model and close the dead-letter queue."""
        self.models.clear()
        self.deadletters.close()


def health_status(report: HealthReport) -> int:
    """HTTP status for a health report: 503 only when a critical check fails."""
    return 503 if report.status == "unhealthy" else 200


class ModelServer(LoopbackServer):
    """``POST /predict`` (JSON job), ``GET /health``, ``GET /models``,
    ``POST /deadletters/replay``, ``POST /admin/load`` (``{"model": name}``, for the CLI)."""

    def __init__(self, service: ModelService) -> None:
        self.service = service

        def health() -> tuple[int, object]:
            report = service.health.run()
            return health_status(report), report.to_dict()

        def admin_load(body: dict[str, Any]) -> tuple[int, object]:
            try:
                return 200, {"loaded": service.load(body["model"])}
            except RetryError as exc:
                return 503, {"error": f"{body['model']} could not be loaded: "
                                      f"{exc.last_exception}"}

        def predict(job: dict[str, Any]) -> tuple[int, object]:
            output, job_id = service.submit(job)
            if job_id is not None:
                return 503, {"error": "model unavailable", "job_id": job_id}
            return 200, {"model": job["model"], "output": output}

        routes: dict[tuple[str, str], Callable[[Any], tuple[int, object]]] = {
            ("GET", "/health"): lambda _: health(),
            ("GET", "/models"): lambda _: (200, {"loaded": service.loaded()}),
            ("POST", "/predict"): predict,
            ("POST", "/deadletters/replay"): lambda _: (200, service.replay_deadletters()),
            ("POST", "/admin/load"): admin_load,
        }

        class Handler(JSONHandler):
            def _route(self, method: str, body: object) -> None:
                route = routes.get((method, urllib.parse.urlsplit(self.path).path))
                try:
                    status, payload = (404, {"error": "not found"}) if route is None \
                        else route(body)
                except (KeyError, ValueError, TypeError) as exc:
                    status, payload = 400, {"error": type(exc).__name__, "detail": str(exc)}
                self.reply(status, payload)

            def do_GET(self) -> None:
                self._route("GET", None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self._route("POST", json.loads(self.rfile.read(length) or b"null"))

        super().__init__(Handler)


def artifact(seed: int, *, inputs: int = 4, nbytes: int = 4 * 1024**3) -> Artifact:
    """A deterministic small linear model (its "weight" on the device is ``nbytes``)."""
    weights = tuple(round(((seed * 7 + i * 3) % 11 - 5) / 4, 2) for i in range(inputs))
    return Artifact(weights, bias=seed / 10, nbytes=nbytes)


MODELS: dict[str, Artifact] = {
    "sentiment": artifact(1),
    "toxicity": artifact(2),
    "language": artifact(3),
}
