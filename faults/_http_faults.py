"""HTTP faults: what an ``HttpFaultProxy`` does to a matching request or its response.

Envoy's fault filter and Chaos Mesh's ``HTTPChaos`` are the anchors: abort with a status
code (the request never reaches the upstream), delay (the request is held before it is
forwarded), replace or truncate the response body, drop a response header. Each
constructor validates its arguments and returns a frozen ``HttpFault``; where it applies
(path, methods, rate, times) is said when it is added to a proxy.
"""

from __future__ import annotations

import fnmatch
import http
from dataclasses import dataclass, field
from typing import Literal

from pytest_resilience import validate

__all__ = [
    "HttpFault",
    "Selector",
    "abort",
    "delay",
    "drop_header",
    "replace_body",
    "truncate_body",
]

HttpFaultKind = Literal["abort", "delay", "replace_body", "truncate_body", "drop_header"]


@dataclass(frozen=True, slots=True)
class HttpFault:
    """One HTTP fault: its kind and parameters. Build with the module's functions."""

    kind: HttpFaultKind
    status: int = 0
    ms: float = 0.0
    body: bytes = b""
    nbytes: int = 0
    header: str = ""
    retry_after: int | None = None
    content_type: str | None = None
    params: tuple[tuple[str, object], ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v!r}"
                         for k, v in self.params if v is not None)
        return f"{self.kind}({args})"


def abort(status: int = 503, *, retry_after: int | None = None,
          body: bytes | str | None = None) -> HttpFault:
    """Answer with ``status`` at once; the request never reaches the upstream.

    ``retry_after`` (seconds) adds a ``Retry-After`` header, as a 429 or 503 from a rate
    limiter or a draining server carries. ``body`` defaults to a one-line text naming
    the fault.
    """
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"status={validate.show(status)} is not an error status. Pass an "
                         "int from 400 to 599, such as 503 or 429.")
    if retry_after is not None and (isinstance(retry_after, bool)
                                    or not isinstance(retry_after, int) or retry_after < 0):
        raise ValueError(f"retry_after={validate.show(retry_after)} is not valid. Pass "
                         "whole seconds >= 0, or None for no Retry-After header.")
    if body is None:
        body = f"{status} {_phrase(status)} (injected by pytest-resilience)\n"
    data = _bytes(body, "body")
    return HttpFault("abort", status=status, body=data, retry_after=retry_after,
                     params=(("status", status), ("retry_after", retry_after)))


def delay(ms: float) -> HttpFault:
    """Hold the request ``ms`` before forwarding it (Envoy's fixed delay): the response
    comes that much later."""
    value = validate.number(ms, "ms", low=0.0, what="a valid duration",
                             accepted="a finite number of milliseconds >= 0")
    return HttpFault("delay", ms=value, params=(("ms", value),))


def replace_body(body: bytes | str, *, content_type: str | None = None) -> HttpFault:
    """Send ``body`` instead of the upstream's response body (``Content-Length`` is set
    to match; ``content_type`` replaces ``Content-Type`` when given)."""
    data = _bytes(body, "body")
    if content_type is not None and (not isinstance(content_type, str) or not content_type):
        raise ValueError(f"content_type={validate.show(content_type)} is not valid. Pass a "
                         "media type such as 'application/json', or None to keep the "
                         "upstream's.")
    return HttpFault("replace_body", body=data, content_type=content_type,
                     params=(("body", data[:32]), ("content_type", content_type)))


def truncate_body(nbytes: int) -> HttpFault:
    """Send the upstream's headers unchanged and only the first ``nbytes`` of its body,
    then close the connection: the client sees a short read (``IncompleteRead``,
    ``httpx.RemoteProtocolError``)."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise ValueError(f"nbytes={validate.show(nbytes)} is not valid. Pass an integer >= 0.")
    return HttpFault("truncate_body", nbytes=nbytes, params=(("nbytes", nbytes),))


def drop_header(name: str) -> HttpFault:
    """Remove the response header ``name`` (any case), e.g. ``Retry-After`` or
    ``Content-Type``."""
    if not isinstance(name, str) or not name or not all(33 <= ord(c) < 127 and c != ":"
                                                        for c in name):
        raise ValueError(f"name={validate.show(name)} is not a header name. Pass a token such as "
                         "'Content-Type'.")
    return HttpFault("drop_header", header=name.lower(), params=(("name", name),))


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _bytes(value: bytes | str, name: str) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    raise TypeError(f"{name}={validate.show(value)} is not bytes or str. Pass the body to send.")


@dataclass(frozen=True, slots=True)
class Selector:
    """Which requests a fault applies to: a path glob, methods, a rate and a budget."""

    path: str = "*"
    methods: frozenset[str] | None = None
    rate: float = 1.0
    times: int | None = None

    @classmethod
    def build(cls, path: str, methods: object, rate: float, times: int | None) -> Selector:
        """Validate the keyword arguments of ``add_fault``."""
        if not isinstance(path, str) or not path.startswith(("/", "*")):
            raise ValueError(f"path={validate.show(path)} is not a path pattern. Pass a glob "
                             "on the path without its query, such as '/v1/predict' or "
                             "'/v1/*'.")
        chosen: frozenset[str] | None = None
        if methods is not None:
            items = [methods] if isinstance(methods, str) else methods
            if not isinstance(items, list | tuple | set | frozenset) or not items or not all(
                    isinstance(m, str) and m.isalpha() for m in items):
                raise ValueError(f"methods={validate.show(methods)} is not a list of HTTP "
                                 "methods. Pass e.g. ['GET', 'POST'], or None for any "
                                 "method.")
            chosen = frozenset(m.upper() for m in items)
        p = validate.fraction(rate, "rate", what="a probability",
                               accepted="a number in [0, 1]")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int)
                                  or times < 1):
            raise ValueError(f"times={validate.show(times)} is not valid. Pass an integer "
                             ">= 1, or None for no limit.")
        return cls(path, chosen, p, times)

    def matches(self, method: str, path: str) -> bool:
        """Whether a request ``method path`` (path without its query) is selected."""
        return (self.methods is None or method in self.methods) and fnmatch.fnmatchcase(
            path, self.path)

    def __str__(self) -> str:
        methods = ",".join(sorted(self.methods)) if self.methods else "*"
        return f"{methods} {self.path}"
