"""Socket-level faults for code that cannot be pointed at a proxy.

``connection_refused``, ``dns_failure`` and ``slow_connect`` install one shared patch of
``socket.socket.connect``/``connect_ex`` and ``socket.getaddrinfo``/``gethostbyname``
while at least one rule is active; each rule matches only the addresses it was given.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_resilience import Clock, History, emit
from pytest_resilience import validate as _validate
from pytest_resilience.kinds import FAULT_ARMED, FAULT_DISARMED, FAULT_FIRED
from pytest_resilience.patching import Patch, patch

__all__ = ["SocketFault", "connection_refused", "dns_failure", "slow_connect"]

_SOURCE = "network.socket"


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str  # "refused" | "dns" | "slow"
    hosts: frozenset[str]  # names and the addresses they resolved to; empty = any host
    port: int | None  # None = any port
    ms: float = 0.0


class _Patch:
    """The one installed patch; rules are added and removed under a lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: dict[int, tuple[_Rule, SocketFault]] = {}
        self.saved: dict[str, Any] = {}
        self.patches: list[Patch] = []

    def add(self, fault: SocketFault) -> None:
        with self.lock:
            if not self.rules:
                self._install()
            self.rules[id(fault)] = (fault.rule, fault)

    def remove(self, fault: SocketFault) -> None:
        with self.lock:
            if self.rules.pop(id(fault), None) is not None and not self.rules:
                self._uninstall()

    def matching(self, kind: str, host: str, port: int | None) -> SocketFault | None:
        for rule, fault in list(self.rules.values()):
            if rule.kind != kind:
                continue
            if rule.hosts and host not in rule.hosts:
                continue
            if rule.port is not None and port is not None and rule.port != port:
                continue
            return fault
        return None

    def _install(self) -> None:
        self.saved = {
            "connect": socket.socket.connect,
            "connect_ex": socket.socket.connect_ex,
            "getaddrinfo": socket.getaddrinfo,
            "gethostbyname": socket.gethostbyname,
            "gethostbyname_ex": socket.gethostbyname_ex,
        }
        original_connect: Callable[[socket.socket, Any], None] = self.saved["connect"]
        original_connect_ex: Callable[[socket.socket, Any], int] = self.saved["connect_ex"]
        original_gai: Callable[..., Any] = self.saved["getaddrinfo"]
        original_ghbn: Callable[[str], str] = self.saved["gethostbyname"]
        original_ghbn_ex: Callable[[str], Any] = self.saved["gethostbyname_ex"]

        def connect(sock: socket.socket, address: Any) -> None:
            self._before_connect(address)
            original_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            try:
                self._before_connect(address)
            except ConnectionRefusedError:
                return errno.ECONNREFUSED
            return original_connect_ex(sock, address)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            self._before_lookup(host)
            return original_gai(host, *args, **kwargs)

        def gethostbyname(host: str) -> str:
            self._before_lookup(host)
            return original_ghbn(host)

        def gethostbyname_ex(host: str) -> Any:
            self._before_lookup(host)
            return original_ghbn_ex(host)

        self.patches = [
            patch(socket.socket, "connect", connect),
            patch(socket.socket, "connect_ex", connect_ex),
            patch(socket, "getaddrinfo", getaddrinfo),
            patch(socket, "gethostbyname", gethostbyname),
            patch(socket, "gethostbyname_ex", gethostbyname_ex),
        ]

    def _uninstall(self) -> None:
        for applied in reversed(self.patches):
            applied.restore()
        self.patches = []
        self.saved = {}

    def _before_connect(self, address: Any) -> None:
        if not isinstance(address, tuple) or len(address) < 2:
            return  # AF_UNIX and friends are never targeted
        host, port = str(address[0]), int(address[1])
        slow = self.matching("slow", host, port)
        if slow is not None:
            slow.fired(host, port)
            slow.clock.sleep(slow.rule.ms / 1000)
        refused = self.matching("refused", host, port)
        if refused is not None:
            refused.fired(host, port)
            raise ConnectionRefusedError(
                errno.ECONNREFUSED, f"Connection refused (injected by {refused!r})"
            )

    def _before_lookup(self, host: Any) -> None:
        name = host.decode() if isinstance(host, bytes) else str(host)
        fault = self.matching("dns", name.lower().rstrip("."), None)
        if fault is not None:
            fault.fired(name, None)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (injected)")


_PATCH = _Patch()


class SocketFault:
    """An active socket-level fault: a context manager (sync and async) undone on exit."""

    def __init__(self, rule: _Rule, *, clock: Clock | None, history: History | None,
                 label: str) -> None:
        self.rule = rule
        self.clock: Clock = _validate.clock(clock)
        self.history = _validate.history(history)
        self.label = label
        self.count = 0
        self._active = False

    def fired(self, host: str, port: int | None) -> None:
        """Count one matching call and record it as a ``fault.fired`` event."""
        self.count += 1
        emit(FAULT_FIRED, _SOURCE, self.clock, history=self.history, family="network",
             action=self.label,
             trigger="address", call=self.count, host=host, port=port)

    def start(self) -> SocketFault:
        """Install the rule."""
        if not self._active:
            _PATCH.add(self)
            self._active = True
            emit(FAULT_ARMED, _SOURCE, self.clock, history=self.history, family="network",
                 fault=self.label)
        return self

    def stop(self) -> None:
        """Remove the rule (the socket module is restored with the last rule)."""
        if self._active:
            _PATCH.remove(self)
            self._active = False
            emit(FAULT_DISARMED, _SOURCE, self.clock, history=self.history, family="network",
                 fault=self.label, fired=self.count)

    def __enter__(self) -> SocketFault:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> SocketFault:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SocketFault {self.label}>"


def _hosts(host: str) -> frozenset[str]:
    """``host`` plus every address it resolves to (resolved before any patch applies)."""
    if not isinstance(host, str) or not host:
        raise (ValueError if isinstance(host, str) else TypeError)(
            f"host={_validate.show(host)} is not a host. Pass a name or an IP address string.")
    names = {host.lower()}
    resolve = _PATCH.saved.get("getaddrinfo", socket.getaddrinfo)
    try:
        for info in resolve(host, None, 0, socket.SOCK_STREAM):
            names.add(str(info[4][0]))
    except UnicodeError as exc:  # the IDNA codec refuses it (a label over 63 characters)
        raise ValueError(f"host={_validate.show(host)} is not a host name ({exc}). Pass a "
                         "name or an IP address string.") from None
    except OSError:
        pass  # an unresolvable name is matched by name only
    return frozenset(names)


def _port(port: int | None) -> int | None:
    if port is None:
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"port={port!r} is not a port. Pass an integer in 1..65535 or None.")
    return port


def connection_refused(host: str, port: int | None = None, *, clock: Clock | None = None,
                       history: History | None = None) -> SocketFault:
    """Make connects to ``host`` (and ``port``, any if ``None``) fail with
    ``ConnectionRefusedError``; every other address connects normally."""
    rule = _Rule("refused", _hosts(host), _port(port))
    return SocketFault(rule, clock=clock, history=history,
                       label=f"connection_refused({host}:{port if port else '*'})")


def dns_failure(name: str, *, clock: Clock | None = None,
                history: History | None = None) -> SocketFault:
    """Make resolving ``name`` fail with ``socket.gaierror`` (``EAI_NONAME``)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r} is not a host name. Pass a name such as "
                         "'db.internal'.")
    rule = _Rule("dns", frozenset({name.lower().rstrip(".")}), None)
    return SocketFault(rule, clock=clock, history=history, label=f"dns_failure({name})")


def slow_connect(ms: float, *, host: str, port: int | None = None,
                 clock: Clock | None = None, history: History | None = None) -> SocketFault:
    """Delay connects to ``host`` (and ``port``) by ``ms`` on ``clock`` before connecting.

    The delay blocks the connecting thread (a ``VirtualClock`` only moves virtual time).
    """
    delay = _validate.number(ms, "ms", low=0.0, what="a valid duration",
                             accepted="a finite number of milliseconds >= 0")
    rule = _Rule("slow", _hosts(host), _port(port), delay)
    return SocketFault(rule, clock=clock, history=history,
                       label=f"slow_connect({delay:g}ms, {host}:{port if port else '*'})")
