"""Network faults: a real loopback TCP proxy with toxics, and socket-level faults.

``FaultProxy`` forwards ``127.0.0.1:<port>`` to an upstream and applies Toxiproxy's
toxics per direction; any client sees it as a server. ``connection_refused``,
``dns_failure`` and ``slow_connect`` reach code that cannot be pointed at a proxy.
Everything here is a context manager that undoes itself.
"""

from __future__ import annotations

from faults._network_sockets import (
    SocketFault,
    connection_refused,
    dns_failure,
    slow_connect,
)
from faults._network_toxics import (
    DIRECTIONS,
    Direction,
    Toxic,
    bandwidth,
    latency,
    limit_data,
    reset_peer,
    slicer,
    slow_close,
    timeout,
)
from faults._proxy import FaultProxy, ProxyStats, ToxicHandle, down

__all__ = [
    "DIRECTIONS",
    "Direction",
    "FaultProxy",
    "ProxyStats",
    "SocketFault",
    "Toxic",
    "ToxicHandle",
    "bandwidth",
    "connection_refused",
    "dns_failure",
    "down",
    "latency",
    "limit_data",
    "reset_peer",
    "slicer",
    "slow_close",
    "slow_connect",
    "timeout",
]

