"""Rotating log files: everything at ``level`` to one file, errors also to a second one."""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import Literal

from pytest_resilience import _validate
from pytest_resilience.observability._logs import HumanFormatter, JsonFormatter

__all__ = ["FileLogging", "log_to_files"]


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "human":
        return HumanFormatter()
    raise ValueError(f"fmt={_validate.show(fmt)} is not a log format. Pass 'json' or "
                     "'human'.")


def _level(value: object, name: str) -> int:
    """A logging level: an int, or a level name such as ``"INFO"``, as an int."""
    names = logging.getLevelNamesMapping()
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    _validate.check(isinstance(value, str) and value in names, name, value,
                    what="a logging level", accepted="an int such as logging.INFO, or a "
                    f"level name: {', '.join(names)}", kind=TypeError
                    if not isinstance(value, str) else ValueError)
    return names[value]  # type: ignore[index]


def _stem(value: object) -> str:
    """A file name stem: text without '/' or NUL, short enough for its suffixes."""
    accepted = "e.g. 'resilience'"
    stem = _validate.text(value, "name", what="a file stem", accepted=accepted)
    _validate.check("/" not in stem and "\x00" not in stem and len(
        stem.encode("utf-8", "surrogatepass")) <= 200, "name", stem, what="a file stem",
        accepted=accepted)
    return stem


class FileLogging:
    """The handlers ``log_to_files`` attached; ``close()`` (or ``with``) detaches them."""

    def __init__(
        self, logger: logging.Logger, log_path: Path, errors_path: Path,
        handlers: tuple[RotatingFileHandler, RotatingFileHandler],
    ) -> None:
        self.logger = logger
        self.log_path = log_path
        self.errors_path = errors_path
        self.handlers = handlers

    def close(self) -> None:
        """Remove and close both handlers (idempotent)."""
        for handler in self.handlers:
            self.logger.removeHandler(handler)
            handler.close()

    def __enter__(self) -> FileLogging:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def log_to_files(
    directory: str | Path,
    *,
    name: str = "resilience",
    logger: str | logging.Logger = "pytest_resilience",
    level: int = logging.INFO,
    errors_level: int = logging.ERROR,
    max_bytes: int = 10 * 1024 * 1024,
    backup_count: int = 5,
    fmt: Literal["json", "human"] = "json",
) -> FileLogging:
    """Attach rotating handlers to ``logger``: ``<name>.log`` at ``level`` and
    ``<name>.errors.log`` at ``errors_level``, each rolled over at ``max_bytes`` keeping
    ``backup_count`` old files (``<name>.log.1`` ...). Sets the logger's level to ``level``.
    """
    max_bytes = _validate.count(max_bytes, "max_bytes", what="a positive size",
                                accepted="bytes > 0, e.g. 10_000_000")
    backup_count = _validate.count(backup_count, "backup_count", what="a number of old files",
                                   accepted="an int >= 1 (0 would disable rotation)")
    name = _stem(name)
    level, errors_level = _level(level, "level"), _level(errors_level, "errors_level")
    formatter = _formatter(fmt)
    folder = _validate.path(directory, "directory", accepted="a directory path")
    if not isinstance(logger, logging.Logger):
        _validate.text(logger, "logger", what="a logger",
                       accepted="a logging.Logger or a logger name")
    folder.mkdir(parents=True, exist_ok=True)
    target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    log_path, errors_path = folder / f"{name}.log", folder / f"{name}.errors.log"
    handlers = []
    for path, handler_level in ((log_path, level), (errors_path, errors_level)):
        handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backup_count,
                                      encoding="utf-8")
        handler.setLevel(handler_level)
        handler.setFormatter(formatter)
        target.addHandler(handler)
        handlers.append(handler)
    target.setLevel(min(level, errors_level))
    return FileLogging(target, log_path, errors_path, (handlers[0], handlers[1]))
