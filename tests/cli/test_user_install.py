"""A user's install: the wheel with a user extra in a fresh venv, and a user-style suite
outside the repository under ``pytest -p resilience``: no warning, no reordering, no
test-only plugin brought in.

Needs the package index (or pip's cache) for pytest, numpy, psutil, time-machine and
hypothesis; it skips with a reason when the index cannot be reached, except under CI
(``CI=true``), where it must run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

USER_SUITE = '''
import pytest
import faults
from faults import Action, Trigger
from pytest_resilience import Backoff, Retry, RetryError

ORDER = []


def fetch(retry):
    return retry.call(lambda: faults.failpoint("store.get", default="value"))


@pytest.mark.parametrize("n", range(4))
def test_first(n):
    ORDER.append(f"first[{n}]")


@pytest.mark.faults(faults.Fault("store.get", Action.raise_(ConnectionError), Trigger.first(2)))
def test_retry_survives_two_outages(clock):
    ORDER.append("retry")
    retry = Retry(attempts=3, backoff=Backoff.exponential(base=0.1), jitter="none",
                  retry_on=(ConnectionError,), clock=clock)
    assert fetch(retry) == "value"
    assert clock.monotonic() == pytest.approx(0.1 + 0.2)


@pytest.mark.sla("p95<10ms", clock="virtual")
def test_budget(sla, clock):
    ORDER.append("budget")
    for _ in range(300):
        with sla.measure("op"):
            clock.advance(0.001)


@pytest.mark.chaos(failpoints={"store.get": [Action.raise_(ConnectionError("x"))]},
                   allow=[RetryError], max_examples=10)
def test_chaos(chaos):
    if "chaos" not in ORDER:  # the body runs once per plan
        ORDER.append("chaos")
    fetch(Retry(attempts=3, retry_on=(ConnectionError,), clock=chaos.clock))


def test_last():
    ORDER.append("last")
    assert ORDER == [f"first[{n}]" for n in range(4)] + ["retry", "budget", "chaos", "last"]
'''


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PYTEST_", "VIRTUAL_ENV", "PYTHONPATH"))}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                          timeout=900, env={**clean, **env})


def test_a_user_install_runs_a_suite_without_warnings_or_reordering(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "--disable-pip-version-check", "-q", "-w", str(wheels), str(ROOT)], tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("pytest_resilience-*.whl")
    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    installed = _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                      f"{wheel}[chaos]"], tmp_path)
    if installed.returncode != 0 and os.environ.get("CI") != "true" and any(
            word in installed.stderr for word in ("NewConnectionError", "Temporary failure",
                                                  "Network is unreachable")):
        pytest.skip(f"the package index cannot be reached: {installed.stderr[-300:]}")
    assert installed.returncode == 0, installed.stderr
    listed = _run([python, "-m", "pip", "list", "--format=freeze"], tmp_path).stdout.lower()
    for peer in ("pytest-randomly", "pytest-asyncio", "pytest-xdist", "pytest-benchmark"):
        assert f"{peer}==" not in listed

    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_service.py").write_text(USER_SUITE, encoding="utf-8")
    result = _run([python, "-m", "pytest", "-p", "resilience", "-v",
                   "--resilience-report=reports"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "warning" not in out.lower(), out
    assert "8 passed" in out.splitlines()[-1]
    ran = [line.split(" ")[0].split("::")[1] for line in out.splitlines()
           if line.startswith("tests/test_service.py::")]
    assert ran == [f"test_first[{n}]" for n in range(4)] + [
        "test_retry_survives_two_outages", "test_budget", "test_chaos", "test_last"]
    assert (project / "reports" / "report.html").is_file()
