"""Rotating log files: everything at ``level`` to one file, errors also to a second one."""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import Literal

from pytest_resilience.observability._logs import HumanFormatter, JsonFormatter

__all__ = ["FileLogging", "log_to_files"]


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    if fmt == "human":
        return HumanFormatter()
    raise ValueError(f"fmt={fmt!r} is not a log format. Pass 'json' or 'human'.")


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
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(
            f"max_bytes={max_bytes!r} is not a positive size. Pass bytes > 0, e.g. 10_000_000."
        )
    if isinstance(backup_count, bool) or not isinstance(backup_count, int) or backup_count < 1:
        raise ValueError(
            f"backup_count={backup_count!r} would disable rotation. Pass an int >= 1."
        )
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"name={name!r} is not a file stem. Pass e.g. 'resilience'.")
    formatter = _formatter(fmt)
    folder = Path(directory)
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
