"""``CliLoader``: loads models through the model server's CLI and trusts no claim it makes.

A load runs ``model_cli.py --url URL load NAME`` (with ``sys.executable``, a 30 s
timeout), then checks what it says with requests of its own: ``GET /models`` must list
the model and ``POST /predict`` must answer the probe input with the manifest's output.
So a CLI that is missing, hangs, exits non-zero, prints ``error:`` on stderr (even with
exit status 0), or claims "loaded" for a model the server does not serve (a false
"loaded") each raises ``CliLoadError``; ``Retry`` tries again, and a missing CLI is not
retried (``CliMissing``: install it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _support.loopback import request
from model_app import MODELS, PROBE

from pytest_resilience import Backoff, Clock, Retry

CLI = Path(__file__).with_name("model_cli.py")
CLI_TIMEOUT = 30.0
CLI_BACKOFF = Backoff.exponential(base=0.5, max=4.0)
CLI_ATTEMPTS = 3


class CliLoadError(Exception):
    """The CLI did not load the model, whatever it said."""


class CliMissing(Exception):
    """The CLI is not installed; trying again will not help."""


class CliLoader:
    """Load models on the server at ``url`` through its CLI, verifying every load."""

    def __init__(self, url: str, *, clock: Clock, cli: Path = CLI,
                 timeout: float = CLI_TIMEOUT) -> None:
        self.url = url
        self.cli = cli
        self.timeout = timeout
        self.retry = Retry(attempts=CLI_ATTEMPTS, backoff=CLI_BACKOFF, jitter="none",
                           retry_on=CliLoadError, clock=clock, name="cli-load")

    def load(self, name: str) -> str:
        """Load ``name`` through the CLI (retried); ``RetryError`` once every try failed,
        ``CliMissing`` at once when the CLI is not installed."""
        return str(self.retry.call(self._load_once, name))

    def _load_once(self, name: str) -> str:
        argv = [sys.executable, str(self.cli), "--url", self.url, "load", name]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except FileNotFoundError as exc:
            raise CliMissing(f"the model CLI is not installed ({exc})") from exc
        except subprocess.TimeoutExpired:
            raise CliLoadError(f"the model CLI did not answer within {self.timeout:g}s "
                               f"loading {name!r}; it was killed") from None
        errors = [line for line in done.stderr.splitlines() if line.startswith("error")]
        if done.returncode != 0 or errors:
            detail = errors[0] if errors else done.stderr.strip() or "no message"
            raise CliLoadError(f"the model CLI failed to load {name!r} (exit status "
                               f"{done.returncode}): {detail}")
        if done.stdout.strip() != f"loaded {name}":
            raise CliLoadError(f"the model CLI answered {done.stdout.strip()!r}, not "
                               f"'loaded {name}'")
        if not self.served(name):
            raise CliLoadError(f"the model CLI said {name!r} was loaded, but the server "
                               "does not serve it")
        return name

    def served(self, name: str) -> bool:
        """Whether the server lists ``name`` as loaded and answers the probe correctly
        (checked with real requests; a prediction of a listed model loads nothing)."""
        status, body = request(f"{self.url}/models")
        if status != 200 or name not in body["loaded"]:
            return False
        status, body = request(f"{self.url}/predict", body={"model": name,
                                                            "input": list(PROBE)})
        return status == 200 and body["output"] == MODELS[name].predict(PROBE)
