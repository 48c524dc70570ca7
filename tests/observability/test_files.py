"""Rotating log files with a separate errors file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pytest_resilience.observability._files import log_to_files


def test_rotation_by_size_and_errors_aggregated(tmp_path: Path) -> None:
    logger = logging.getLogger("obs-test.rotation")
    logger.propagate = False
    with log_to_files(tmp_path, logger=logger, max_bytes=2_000, backup_count=2) as files:
        for i in range(60):
            logger.info("request %d handled", i, extra={"i": i})
        logger.error("request failed", extra={"i": 999})
    assert not logger.handlers
    rotated = sorted(p.name for p in tmp_path.iterdir())
    assert rotated == ["resilience.errors.log", "resilience.log", "resilience.log.1",
                       "resilience.log.2"]
    for path in tmp_path.glob("resilience.log*"):
        assert path.stat().st_size <= 2_000
    newest = [json.loads(line) for line in files.log_path.read_text().splitlines()]
    assert newest[-1]["message"] == "request failed"
    errors = [json.loads(line) for line in files.errors_path.read_text().splitlines()]
    assert [(e["level"], e["fields"]["i"]) for e in errors] == [("ERROR", 999)]


def test_human_format_and_level(tmp_path: Path) -> None:
    logger = logging.getLogger("obs-test.human")
    logger.propagate = False
    with log_to_files(tmp_path, name="svc", logger=logger, fmt="human",
                      level=logging.WARNING, errors_level=logging.WARNING) as files:
        logger.info("hidden")
        logger.warning("shown")
    assert files.log_path.read_text().endswith("WARNING obs-test.human: shown\n")
    assert files.errors_path.read_text() == files.log_path.read_text()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_bytes": 0},
     "max_bytes=0 is not a positive size. Pass bytes > 0, e.g. 10_000_000."),
    ({"backup_count": 0},
     "backup_count=0 is not a number of old files. Pass an int >= 1 (0 would disable "
     "rotation)."),
    ({"fmt": "xml"}, "fmt='xml' is not a log format. Pass 'json' or 'human'."),
    ({"name": "a/b"}, "name='a/b' is not a file stem. Pass e.g. 'resilience'."),
    ({"name": "x" * 300}, f"name='{'x' * 27}...{'x' * 28}' is not a file stem. Pass e.g. "
                          "'resilience'."),
    ({"errors_level": ""}, "errors_level='' is not a logging level. Pass an int such as "
                           "logging.INFO, or a level name: CRITICAL, FATAL, ERROR, WARN, "
                           "WARNING, INFO, DEBUG, NOTSET."),
])
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        log_to_files(tmp_path, **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"directory": None},
     "directory=None is not a path. Pass a directory path."),
    ({"level": None},
     "level=None is not a logging level. Pass an int such as logging.INFO, or a level name: "
     "CRITICAL, FATAL, ERROR, WARN, WARNING, INFO, DEBUG, NOTSET."),
    ({"logger": 3}, "logger=3 is not a logger. Pass a logging.Logger or a logger name."),
])
def test_wrong_types_are_named(tmp_path: Path, kwargs: dict[str, object],
                               message: str) -> None:
    with pytest.raises(TypeError) as info:
        log_to_files(**{"directory": tmp_path, **kwargs})  # type: ignore[arg-type]
    assert str(info.value) == message


def test_a_level_name_is_read_as_its_number(tmp_path: Path) -> None:
    logger = logging.getLogger("obs-test.named-level")
    logger.propagate = False
    with log_to_files(tmp_path, logger=logger, level="WARNING",  # type: ignore[arg-type]
                      errors_level="ERROR") as files:  # type: ignore[arg-type]
        logger.info("hidden")
        logger.warning("shown")
    assert logger.level == logging.WARNING
    assert "shown" in files.log_path.read_text()
    assert "hidden" not in files.log_path.read_text()
