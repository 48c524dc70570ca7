"""HTTP faults: a loopback HTTP/1.1 proxy that aborts, delays and damages responses.

``HttpFaultProxy(upstream)`` sits in front of an HTTP/1.1 service (keep-alive and all);
``proxy.add_fault(abort(503), path="/v1/*", methods=["POST"], rate=0.5)`` makes half the
matching requests fail with 503, drawn from the proxy's seeded RNG. The faults are the
ones ML services meet most (Envoy's fault filter and Chaos Mesh's HTTPChaos are the
anchors): ``abort`` (with ``Retry-After``), ``delay``, ``replace_body``,
``truncate_body``, ``drop_header``. Needs h11 (the ``http`` extra).
"""

from __future__ import annotations

from faults._http_faults import (
    HttpFault,
    Selector,
    abort,
    delay,
    drop_header,
    replace_body,
    truncate_body,
)
from faults._http_proxy import FaultHandle, HttpFaultProxy

__all__ = [
    "FaultHandle",
    "HttpFault",
    "HttpFaultProxy",
    "Selector",
    "abort",
    "delay",
    "drop_header",
    "replace_body",
    "truncate_body",
]
