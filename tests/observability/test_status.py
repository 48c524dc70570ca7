"""``python -m pytest_resilience status`` on this machine (no GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_resilience._status import load_registry


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if cwd is not None:
        env["PYTHONPATH"] = str(cwd)
    return subprocess.run([sys.executable, "-m", "pytest_resilience", *args],
                          check=False, capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd)


def _has_gpu() -> bool:
    from pytest_resilience.memory._gpu import read_gpu_devices
    return bool(read_gpu_devices())


REGISTRY = '''
from pytest_resilience._health import HealthRegistry

registry = HealthRegistry()
registry.register("db", lambda: True)
registry.register("cache", lambda: False, critical=False)

def broken():
    r = HealthRegistry()
    r.register("db", lambda: False)
    return r
'''


def test_json_shape_without_registry() -> None:
    result = _run("status", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"memory", "gpu", "health"}
    memory = data["memory"]
    assert memory["available"] is True
    assert memory["level"] in {"normal", "warning", "critical", "emergency"}
    assert set(memory["reading"]) == {"used", "total", "source", "percent"}
    assert 0 < memory["reading"]["used"] <= memory["reading"]["total"]
    assert data["health"] is None
    if _has_gpu():
        assert data["gpu"]["available"] is True
        assert {"index", "name", "used", "total", "level"} <= set(data["gpu"]["devices"][0])
    else:
        assert data["gpu"]["available"] is False
        assert data["gpu"]["reason"] == "no GPU"
        assert data["gpu"]["devices"] == []


def test_text_screen_with_a_degraded_registry(tmp_path: Path) -> None:
    (tmp_path / "svc_health.py").write_text(REGISTRY)
    result = _run("status", "--registry", "svc_health:registry", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("memory  ")
    if not _has_gpu():
        assert lines[1] == "gpu     no GPU"
    assert lines[-3:] == ["health  degraded",
                          "  db                   healthy",
                          "  cache                unhealthy  check returned False"]


def test_unhealthy_registry_exits_1_with_json_checks(tmp_path: Path) -> None:
    (tmp_path / "svc_health.py").write_text(REGISTRY)
    result = _run("status", "--json", "--registry", "svc_health:broken", cwd=tmp_path)
    assert result.returncode == 1
    health = json.loads(result.stdout)["health"]
    assert health["status"] == "unhealthy"
    assert health["checks"]["db"]["status"] == "unhealthy"


def test_usage_errors_exit_2() -> None:
    assert _run().returncode == 2
    bad = _run("status", "--registry", "nocolon")
    assert bad.returncode == 2
    assert "registry='nocolon' is not 'module:attr'" in bad.stderr


def test_load_registry_rejects_objects_without_run() -> None:
    with pytest.raises(TypeError) as info:
        load_registry("json:JSONDecodeError.__name__")
    assert str(info.value) == (
        "registry='json:JSONDecodeError.__name__' is a str, which has no run(). Point it at "
        "a HealthRegistry or a function returning one."
    )
