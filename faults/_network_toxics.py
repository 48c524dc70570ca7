"""Toxics: what a ``FaultProxy`` does to the bytes of one direction of a connection.

The vocabulary and the semantics are Toxiproxy's (its ``toxics/*.go`` are the reference;
docs/network.md lists where we differ). Each constructor validates its arguments and
returns a frozen ``Toxic``; ``faults._toxic_stages`` says what it does to each chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pytest_resilience import validate as _validate

__all__ = [
    "DIRECTIONS",
    "Direction",
    "Toxic",
    "bandwidth",
    "latency",
    "limit_data",
    "reset_peer",
    "slicer",
    "slow_close",
    "timeout",
]

Direction = Literal["upstream", "downstream"]
#: ``upstream`` is client -> server, ``downstream`` server -> client (Toxiproxy's names).
DIRECTIONS: tuple[Direction, ...] = ("upstream", "downstream")

ToxicKind = Literal[
    "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"
]


@dataclass(frozen=True, slots=True)
class Toxic:
    """One toxic: its kind and parameters. Build with the module's functions."""

    kind: ToxicKind
    ms: float = 0.0
    jitter_ms: float = 0.0
    kb_per_s: float = 0.0
    avg_size: int = 0
    size_variation: int = 0
    limit: int = 0
    params: tuple[tuple[str, float], ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params)
        return f"{self.kind}({args})"


def _duration_ms(value: float, name: str) -> float:
    return _validate.number(value, name, low=0.0, what="a valid duration",
                            accepted="a finite number of milliseconds >= 0")


def _count(value: int, name: str, minimum: int) -> int:
    return _validate.count(value, name, low=minimum, what="valid")


def latency(ms: float, jitter_ms: float = 0.0) -> Toxic:
    """Deliver every chunk ``ms`` ± a uniform ``jitter_ms`` after it arrived (jitter
    drawn from the proxy's RNG). Chunks are pipelined: each is delayed from its own
    arrival (not from the delivery of the one before it) and never overtakes it."""
    ms = _duration_ms(ms, "ms")
    jitter_ms = _duration_ms(jitter_ms, "jitter_ms")
    return Toxic("latency", ms=ms, jitter_ms=jitter_ms,
                 params=(("ms", ms), ("jitter_ms", jitter_ms)))


def bandwidth(kb_per_s: float) -> Toxic:
    """Forward at most ``kb_per_s`` KB (1000 bytes, as Toxiproxy) per second: each chunk
    is delivered when its last byte would have crossed a link of that rate, in pieces
    of a tenth of a second's worth."""
    rate = _validate.number(kb_per_s, "kb_per_s", low=0.0, low_open=True,
                            what="a valid rate", accepted="a finite number > 0 (use "
                            "timeout(0) to stop data altogether)")
    return Toxic("bandwidth", kb_per_s=rate, params=(("kb_per_s", rate),))


def slow_close(ms: float) -> Toxic:
    """Pass data on unchanged, but the end of the stream (FIN) only ``ms`` after it
    arrived."""
    ms = _duration_ms(ms, "ms")
    return Toxic("slow_close", ms=ms, params=(("ms", ms),))


def timeout(ms: float) -> Toxic:
    """Stop all data (it is dropped) and close the connection ``ms`` after the toxic
    applies to it. ``ms=0`` never closes: the client waits until its own timeout.

    As in Toxiproxy, removing the toxic closes the connections it held (the bytes it
    dropped would otherwise corrupt the stream).
    """
    ms = _duration_ms(ms, "ms")
    return Toxic("timeout", ms=ms, params=(("ms", ms),))


def reset_peer(after_ms: float = 0.0) -> Toxic:
    """Reset the connection (TCP RST, ``SO_LINGER`` 0) ``after_ms`` after the first data
    reaches the toxic; that data and everything after it is dropped (Toxiproxy)."""
    after_ms = _duration_ms(after_ms, "after_ms")
    return Toxic("reset_peer", ms=after_ms, params=(("after_ms", after_ms),))


def slicer(avg_size: int, delay_ms: float = 0.0, *, size_variation: int = 0) -> Toxic:
    """Cut each chunk into pieces of about ``avg_size`` bytes (halving it until a piece
    is at most ``avg_size + size_variation``, each cut moved by up to
    ``size_variation``, as Toxiproxy), sent ``delay_ms`` apart."""
    avg_size = _count(avg_size, "avg_size", 1)
    size_variation = _count(size_variation, "size_variation", 0)
    if size_variation >= avg_size:
        raise ValueError(
            f"size_variation={size_variation!r} is not below avg_size={avg_size!r}. Pass a "
            "variation smaller than the average size."
        )
    delay_ms = _duration_ms(delay_ms, "delay_ms")
    return Toxic("slicer", ms=delay_ms, avg_size=avg_size, size_variation=size_variation,
                 params=(("avg_size", avg_size), ("delay_ms", delay_ms),
                         ("size_variation", size_variation)))


def limit_data(nbytes: int) -> Toxic:
    """Close the connection once ``nbytes`` bytes went through in this direction,
    counted from when the toxic applies (a new toxic counts from zero, as Toxiproxy)."""
    nbytes = _count(nbytes, "nbytes", 0)
    return Toxic("limit_data", limit=nbytes, params=(("nbytes", nbytes),))
