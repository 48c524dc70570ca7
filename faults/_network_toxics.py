"""Toxics: what a ``FaultProxy`` does to the bytes of one direction of a connection.

The vocabulary is Toxiproxy's. Each constructor validates its arguments and returns a
frozen ``Toxic``; the proxy engine (``faults._proxy``) interprets it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pytest_resilience import _validate

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
    """Delay every chunk by ``ms`` ± a uniform ``jitter_ms`` (drawn from the proxy's RNG)."""
    ms = _duration_ms(ms, "ms")
    jitter_ms = _duration_ms(jitter_ms, "jitter_ms")
    return Toxic("latency", ms=ms, jitter_ms=jitter_ms,
                 params=(("ms", ms), ("jitter_ms", jitter_ms)))


def bandwidth(kb_per_s: float) -> Toxic:
    """Forward at most ``kb_per_s`` KiB per second."""
    rate = _validate.number(kb_per_s, "kb_per_s", low=0.0, low_open=True,
                            what="a valid rate", accepted="a finite number > 0 (use "
                            "timeout(0) to stop data altogether)")
    return Toxic("bandwidth", kb_per_s=rate, params=(("kb_per_s", rate),))


def slow_close(ms: float) -> Toxic:
    """Delay passing on the end of the stream (FIN) by ``ms``."""
    ms = _duration_ms(ms, "ms")
    return Toxic("slow_close", ms=ms, params=(("ms", ms),))


def timeout(ms: float) -> Toxic:
    """Stop forwarding (data is dropped) and close the connection after ``ms``.

    ``ms=0`` holds the connection open with no data until the toxic is removed.
    """
    ms = _duration_ms(ms, "ms")
    return Toxic("timeout", ms=ms, params=(("ms", ms),))


def reset_peer(after_ms: float = 0.0) -> Toxic:
    """Reset the connection (TCP RST, ``SO_LINGER`` 0) ``after_ms`` after it is affected."""
    after_ms = _duration_ms(after_ms, "after_ms")
    return Toxic("reset_peer", ms=after_ms, params=(("after_ms", after_ms),))


def slicer(avg_size: int, delay_ms: float = 0.0, *, size_variation: int = 0) -> Toxic:
    """Cut data into pieces of ``avg_size`` ± ``size_variation`` bytes, ``delay_ms`` apart."""
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
    """Close the connection once ``nbytes`` bytes went through in this direction."""
    nbytes = _count(nbytes, "nbytes", 0)
    return Toxic("limit_data", limit=nbytes, params=(("nbytes", nbytes),))
