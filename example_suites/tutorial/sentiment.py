"""A small ML service: a sentiment model behind HTTP, and the client the app calls it with.

``ModelServer`` answers ``POST /predict {"text": ...}`` with ``{"score": ...}`` on
127.0.0.1. ``Predictor`` is the application's client: a timeout per call, three attempts
with backoff on connection errors and timeouts. Two failpoints mark where things break:
``model.predict`` (the model itself) and ``model.call`` (the client's network call).
"""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import faults
from pytest_resilience import Backoff, Clock, Retry

POSITIVE = {"good", "great", "fast", "love"}
NEGATIVE = {"bad", "slow", "broken", "hate"}


def score(text: str) -> float:
    """The "model": share of positive words among the sentiment words (0.5: neutral)."""
    faults.failpoint("model.predict")  # a no-op unless a test arms it
    words = text.lower().split()
    pos = sum(w in POSITIVE for w in words)
    neg = sum(w in NEGATIVE for w in words)
    return 0.5 if pos + neg == 0 else pos / (pos + neg)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        text = json.loads(self.rfile.read(length))["text"]
        body = json.dumps({"score": score(text)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


class ModelServer:
    """The model over HTTP on 127.0.0.1 (an OS-chosen port); a context manager."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def __enter__(self) -> ModelServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class Predictor:
    """The application's client: ``predict(text)`` with a timeout and three attempts."""

    def __init__(self, url: str, *, timeout: float = 0.5, clock: Clock | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.retry = Retry(attempts=3, backoff=Backoff.exponential(base=0.05), jitter="none",
                           retry_on=(OSError,), clock=clock, name="predict")

    def predict(self, text: str) -> float:
        """The model's score for ``text``; raises ``RetryError`` after three failures."""
        return float(self.retry.call(self._post, text))

    def _post(self, text: str) -> Any:
        faults.failpoint("model.call")  # where the network call can fail
        request = urllib.request.Request(
            f"{self.url}/predict", data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.loads(response.read())["score"]
