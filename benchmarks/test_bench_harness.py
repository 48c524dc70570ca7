"""Harness cost: a generated 2,000-test trivial suite with and without the plugin.

Each round runs ``pytest -p no:resilience`` (untimed setup, timed here by hand) and then
``pytest -p resilience`` (the benchmarked target) in fresh subprocesses, so the two
alternate round by round and share the machine's conditions. Two environments:

- ``installed``: plugin autoloading on, as a user of this project runs it (every plugin
  of the ``[test]`` extra loaded in both runs);
- ``isolated``: ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, pytest alone vs pytest + this
  plugin, so the figure includes importing the plugin. Any ``-p NAME`` makes pytest scan
  every installed distribution's entry points for ``NAME`` first (a few ms in this venv:
  pytest's cost, not the plugin's), so the run without the plugin loads an empty plugin
  module the same way.

Every run reads compiled bytecode from a cache warmed by the first (warm-up) round, as
an installed package is compiled once, not at every run (this workplace sets
``PYTHONDONTWRITEBYTECODE``, under which each run would compile pytest and the plugin
again: half a second of pytest and 20 ms of ours, the same for every run).

``extra_info`` holds the medians of both, and the overhead on wall time and on CPU time
(user + system of the child; steadier on a shared box): the ratio of the medians, and the
median of each round's on/off ratio (``paired``: the two runs of a round share the
machine's conditions). Target: at most 1% slower. ``RESILIENCE_BENCH_HARNESS_ROUNDS``
sets the rounds (default 15).

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_harness.py --benchmark-only``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

FILES, TESTS_PER_FILE = 20, 100
EMPTY_PLUGIN = "empty_plugin"
ROUNDS = int(os.environ.get("RESILIENCE_BENCH_HARNESS_ROUNDS", "15"))
TARGET_PERCENT = 1.0


@pytest.fixture(scope="module")
def trivial_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 passing one-line tests in 20 modules, with an empty ini (no project config)."""
    root = tmp_path_factory.mktemp("trivial_suite")
    (root / "pytest.ini").write_text("[pytest]\n")
    for f in range(FILES):
        body = "".join(f"def test_{i}():\n    assert {i} == {i}\n\n\n"
                       for i in range(TESTS_PER_FILE))
        (root / f"test_trivial_{f:02d}.py").write_text(body)
    (root / f"{EMPTY_PLUGIN}.py").write_text('"""A plugin that does nothing."""\n')
    return root


@pytest.fixture(scope="module")
def bytecode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the runs keep their compiled bytecode (``PYTHONPYCACHEPREFIX``)."""
    return tmp_path_factory.mktemp("pycache")


def _env(isolated: bool, bytecode: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
                        "PYTHONDONTWRITEBYTECODE")}
    env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    if isolated:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def _run(suite: Path, plugins: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One pytest run in a subprocess: (wall seconds, child CPU seconds)."""
    args = [sys.executable, "-m", "pytest", "-q", *plugins, "-p", "no:randomly",
            "-p", "no:cacheprovider", str(suite)]
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=suite, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def _overhead(on: list[float], off: list[float]) -> float:
    return round(100.0 * (statistics.median(on) / statistics.median(off) - 1.0), 2)


def _paired(on: list[float], off: list[float]) -> tuple[float, float]:
    """The median of the rounds' on/off ratios and their interquartile range, in %."""
    ratios = [100.0 * (a / b - 1.0) for a, b in zip(on, off, strict=True)]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return round(statistics.median(ratios), 2), round(q3 - q1, 2)


@pytest.mark.benchmark(group="harness-cost-2000-tests")
@pytest.mark.parametrize("environment", ["installed", "isolated"])
def test_plugin_on_vs_off(benchmark: Any, trivial_suite: Path, bytecode: Path,
                          environment: str) -> None:
    """The timed target is the run with the plugin; ``-p no:resilience`` runs before it."""
    isolated = environment == "isolated"
    env = _env(isolated, bytecode)
    with_plugin = ["-p", "pytest_resilience.plugin" if isolated else "resilience"]
    without = ["-p", "no:resilience", *(["-p", EMPTY_PLUGIN] if isolated else [])]
    runs: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}

    def off() -> None:
        runs["off"].append(_run(trivial_suite, without, env))

    def on() -> None:
        runs["on"].append(_run(trivial_suite, with_plugin, env))

    benchmark.pedantic(on, setup=off, rounds=ROUNDS, warmup_rounds=1)
    walls = {k: [w for w, _ in v[-ROUNDS:]] for k, v in runs.items()}
    cpus = {k: [c for _, c in v[-ROUNDS:]] for k, v in runs.items()}
    paired, spread = _paired(cpus["on"], cpus["off"])
    benchmark.extra_info.update({
        "tests": FILES * TESTS_PER_FILE,
        "environment": environment,
        "off_wall_median_s": round(statistics.median(walls["off"]), 4),
        "on_wall_median_s": round(statistics.median(walls["on"]), 4),
        "overhead_wall_percent": _overhead(walls["on"], walls["off"]),
        "off_cpu_median_s": round(statistics.median(cpus["off"]), 4),
        "on_cpu_median_s": round(statistics.median(cpus["on"]), 4),
        "overhead_cpu_percent": _overhead(cpus["on"], cpus["off"]),
        "overhead_cpu_paired_percent": paired,
        "overhead_cpu_paired_iqr_percent": spread,
        "target_percent": TARGET_PERCENT,
    })
