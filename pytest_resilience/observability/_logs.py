"""Events as stdlib log records, and JSON / human formatters that show the context.

``log_events()`` adds a global event listener: each event becomes one record on the
logger ``pytest_resilience.events.<family>`` (``retry.attempt`` goes to
``pytest_resilience.events.retry``) at the level ``event_level`` gives it. When that
logger is not enabled for the level, the listener returns before building anything.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from pytest_resilience import _validate
from pytest_resilience._events import Event, add_listener
from pytest_resilience.kinds import (
    BREAKER_CALL,
    BREAKER_REJECTED,
    BREAKER_TRANSITION,
    CACHE_EVICT,
    CACHE_HIT,
    CACHE_MISS,
    CHROMA_CORRUPT,
    CHROMA_ROLLBACK,
    CLOCK_SKEW,
    DEADLETTER_ADDED,
    FAULT_FIRED,
    GPU_USAGE,
    HEALTH_CHECK,
    LOCK_TIMEOUT,
    MEMORY_PRESSURE,
    PROXY_CONNECTION,
    RATELIMIT_ACQUIRED,
    RATELIMIT_REJECTED,
    RETRY_ATTEMPT,
    RETRY_GIVEUP,
    RETRY_SLEEP,
    SLA_SAMPLE,
    TRACE_OPERATION,
)
from pytest_resilience.observability._context import current_context
from pytest_resilience.observability._redact import Redactor

__all__ = [
    "EVENT_LOGGER",
    "EventLogging",
    "HumanFormatter",
    "JsonFormatter",
    "event_level",
    "log_events",
]

EVENT_LOGGER = "pytest_resilience.events"

# Kinds that mean something went wrong or degraded: WARNING. High-volume routine kinds:
# DEBUG. Everything else: INFO.
_WARNING_KINDS = frozenset({
    RETRY_GIVEUP, BREAKER_REJECTED, RATELIMIT_REJECTED, LOCK_TIMEOUT,
    DEADLETTER_ADDED, CACHE_EVICT, CHROMA_ROLLBACK, CHROMA_CORRUPT, FAULT_FIRED,
    CLOCK_SKEW,
})
_DEBUG_KINDS = frozenset({
    RETRY_SLEEP, BREAKER_CALL, RATELIMIT_ACQUIRED, CACHE_HIT, CACHE_MISS,
    PROXY_CONNECTION, SLA_SAMPLE,
})

# Attributes of a LogRecord that the formatters own; anything else a caller put in
# ``extra=`` is shown as a field.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "resilience_event", "resilience_context",
}


def event_level(event: Event) -> int:
    """The log level of ``event``: WARNING for failures, DEBUG for routine noise, else INFO."""
    kind, attrs = event.kind, event.attrs
    if kind in _WARNING_KINDS:
        return logging.WARNING
    if kind == BREAKER_TRANSITION:
        return logging.WARNING if attrs.get("to") == "open" else logging.INFO
    if kind == HEALTH_CHECK:
        return logging.INFO if attrs.get("status") == "healthy" else logging.WARNING
    if kind in (MEMORY_PRESSURE, GPU_USAGE):
        return logging.INFO if attrs.get("level") == "normal" else logging.WARNING
    if kind == RETRY_ATTEMPT:
        return logging.DEBUG if attrs.get("outcome") == "ok" else logging.INFO
    if kind == TRACE_OPERATION:
        return logging.INFO if attrs.get("outcome") == "ok" else logging.WARNING
    if kind in _DEBUG_KINDS:
        return logging.DEBUG
    return logging.INFO


def _render_value(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if text and " " not in text else repr(text)


def _message(event: Event, attrs: Mapping[str, Any]) -> str:
    pairs = " ".join(f"{k}={_render_value(v)}" for k, v in attrs.items())
    return f"{event.kind} {event.source}" + (f" {pairs}" if pairs else "")


class EventLogging:
    """The listener ``log_events()`` installs; ``close()`` (or ``with``) removes it."""

    def __init__(
        self,
        *,
        logger: str = EVENT_LOGGER,
        level: Callable[[Event], int] = event_level,
        redactor: Redactor | None = None,
    ) -> None:
        if not isinstance(logger, str) or not logger:
            raise TypeError(f"logger={_validate.show(logger)} is not a logger name. "
                            "Pass e.g. 'myapp.events'.")
        self.prefix = logger
        self.level = level
        self.redactor = redactor if redactor is not None else Redactor()
        self._loggers: dict[str, logging.Logger] = {}
        self._remove: Callable[[], None] | None = add_listener(self)

    def _logger(self, kind: str) -> logging.Logger:
        family = kind.partition(".")[0]
        logger = self._loggers.get(family)
        if logger is None:
            logger = self._loggers[family] = logging.getLogger(f"{self.prefix}.{family}")
        return logger

    def __call__(self, event: Event) -> None:
        """Log ``event`` if its logger is enabled for its level."""
        level = self.level(event)
        logger = self._logger(event.kind)
        if not logger.isEnabledFor(level):
            return
        attrs = self.redactor(event.attrs)
        logger.log(level, _message(event, attrs), extra={
            "resilience_event": {"kind": event.kind, "source": event.source,
                                 "seq": event.seq, "time": event.time, "attrs": attrs},
            "resilience_context": dict(current_context()),
        })

    def close(self) -> None:
        """Stop logging events (idempotent)."""
        if self._remove is not None:
            self._remove()
            self._remove = None

    def __enter__(self) -> EventLogging:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def log_events(
    *,
    logger: str = EVENT_LOGGER,
    level: Callable[[Event], int] = event_level,
    redactor: Redactor | None = None,
) -> EventLogging:
    """Log every event emitted anywhere from now on; returns the handle to ``close()``."""
    return EventLogging(logger=logger, level=level, redactor=redactor)


def _record_fields(record: logging.LogRecord, redactor: Redactor) -> tuple[
    dict[str, Any] | None, dict[str, Any], dict[str, Any]
]:
    event = getattr(record, "resilience_event", None)
    context = getattr(record, "resilience_context", None)
    if context is None:
        context = dict(current_context())
    extra = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
    return event, redactor(context), redactor(extra)


def _timestamp(created: float) -> str:
    millis = int(created * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``message``, ``context``,
    ``event`` (kind, source, seq, time, attrs) for event records, ``fields`` for ``extra=``
    and ``exc`` for a traceback. Secrets are redacted; non-JSON values are ``repr``-ed.
    """

    def __init__(self, *, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor if redactor is not None else Redactor()

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        event, context, extra = _record_fields(record, self.redactor)
        data: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if context:
            data["context"] = context
        if event is not None:
            data["event"] = event
        if extra:
            data["fields"] = extra
        if record.exc_info:
            data["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(data, default=repr, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    """``<ts> <LEVEL> <logger>: <message> [correlation_id=... operation=... k=v]``."""

    def __init__(self, *, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor if redactor is not None else Redactor()

    def format(self, record: logging.LogRecord) -> str:
        """The record as one readable line (plus a traceback if any)."""
        _, context, extra = _record_fields(record, self.redactor)
        fields = {**context, **extra}
        suffix = " [" + " ".join(f"{k}={_render_value(v)}" for k, v in fields.items()) + "]"
        line = (f"{_timestamp(record.created)} {record.levelname:<7} {record.name}: "
                f"{record.getMessage()}{suffix if fields else ''}")
        if record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return line
