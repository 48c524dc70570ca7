"""What the disk-fault layer costs Python file I/O: 200 small files written with ``open``.

Variants: ``elsewhere`` (a disk fault armed on another directory: every ``open`` pays
the path check only), ``under_fault`` (a fault on this directory that never fires: files
are built on the tracked ``FileIO``) and ``under_recorder`` (a crash simulator recording
every write into its model). Each round first times the same writes with no layer
installed, and ``extra_info["over_plain"]`` is the ratio of the medians, so load on the
machine hits both alike. There is no peer: no other Python tool injects disk faults at
this layer (pyfakefs replaces the file system instead, and cannot see real files).

Run: ``.venv/bin/python -m pytest benchmarks/test_bench_disk_layer.py --benchmark-only``.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from faults import disk

FILES = 200
PAYLOAD = b"x" * 4096
ROUNDS = 15


def write_files(directory: Path) -> None:
    for n in range(FILES):
        with open(directory / f"f{n}.bin", "wb") as fh:
            fh.write(PAYLOAD)


def fresh(directory: Path) -> Path:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    return directory


VARIANTS: dict[str, Callable[[Path, Path], AbstractContextManager[Any]]] = {
    "elsewhere": lambda _work, other: disk.latency(other, 0.0),
    "under_fault": lambda work, _other: disk.latency(work, 0.0),
    "under_recorder": lambda work, _other: disk.crash_simulator(work),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_disk_layer_cost(benchmark: BenchmarkFixture, tmp_path: Path, variant: str) -> None:
    work, other = tmp_path / "work", fresh(tmp_path / "other")
    plain: list[float] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        fresh(work)
        started = time.perf_counter()
        write_files(work)
        plain.append(time.perf_counter() - started)
        return (fresh(work),), {}

    def target(directory: Path) -> None:
        with VARIANTS[variant](directory, other):
            write_files(directory)

    benchmark.group = "disk layer: 200 x open/write/close of 4 KiB"
    benchmark.pedantic(target, setup=setup, rounds=ROUNDS, iterations=1)
    median = statistics.median(benchmark.stats.stats.data)
    benchmark.extra_info["plain_median_s"] = statistics.median(plain)
    benchmark.extra_info["over_plain"] = round(median / statistics.median(plain), 2)
    print(f"\n{variant}: {benchmark.extra_info['over_plain']}x plain Python I/O")
