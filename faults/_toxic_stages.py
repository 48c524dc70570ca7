"""What each toxic does to the chunks of one direction of one connection.

A direction's toxics form a chain in the order they were added (Toxiproxy's link). A
chunk enters the chain with its arrival time as ``due``; each stage maps items to items,
moving ``due`` later (latency, bandwidth, slicer, slow_close), cutting (slicer,
limit_data) or dropping them (timeout, reset_peer), and may ask the connection to close
or reset at a time. Everything is computed when the chunk arrives, so delays are
measured from each chunk's own arrival and chunks flow pipelined, as in Toxiproxy where
every chunk carries its arrival timestamp through the chain.

An item the stage held later than it arrived lists the stage in ``holders``: removing
the toxic releases what it holds at once (Toxiproxy's interrupt flushes the stub).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

from faults._network_toxics import Toxic

__all__ = ["CLOSE", "DATA", "EOF", "Effects", "Item", "Stage", "make_stage", "slice_points"]

DATA, EOF, CLOSE = 0, 1, 2  # an item's kind: bytes, the end of the stream, close all


@dataclass(slots=True)
class Item:
    """Bytes (or an end) that the direction's writer delivers once time reaches ``due``."""

    due: float
    kind: int = DATA
    data: bytes = b""
    holders: tuple[str, ...] = ()

    def held(self, by: str, until: float) -> Item:
        """This item delivered at ``until`` instead (held by stage ``by`` if later)."""
        if until <= self.due:
            return self
        return Item(until, self.kind, self.data, (*self.holders, by))


class Effects(Protocol):
    """What a stage may ask of its connection."""

    @property
    def rng(self) -> random.Random:
        """The proxy's seeded RNG (jitter, slice sizes)."""
        ...

    def at(self, name: str, when: float, action: str) -> None:
        """Close (``"close"``) or reset (``"reset"``) the connection at ``when``."""
        ...


class Stage:
    """One toxic on one direction of one connection."""

    def __init__(self, name: str, toxic: Toxic, fx: Effects) -> None:
        self.name = name
        self.toxic = toxic
        self.fx = fx

    def feed(self, items: list[Item]) -> list[Item]:
        """The items this stage passes on, in order, for ``items`` in order."""
        raise NotImplementedError


class _Paced(Stage):
    """A stage that handles one item at a time: the next waits until ``free``."""

    def __init__(self, name: str, toxic: Toxic, fx: Effects) -> None:
        super().__init__(name, toxic, fx)
        self.free = -math.inf

    def feed(self, items: list[Item]) -> list[Item]:
        out: list[Item] = []
        for item in items:
            start = max(self.free, item.due)
            produced = self.data(item, start) if item.kind == DATA else [
                item.held(self.name, self.end(start))]
            out.extend(produced)
            if produced:
                self.free = max(self.free, produced[-1].due)
        return out

    def data(self, item: Item, start: float) -> list[Item]:
        raise NotImplementedError

    def end(self, start: float) -> float:
        return start


class _Latency(_Paced):
    """``latency.go``: due = arrival + latency ± jitter, in order."""

    def data(self, item: Item, start: float) -> list[Item]:
        delay = self.toxic.ms
        if self.toxic.jitter_ms:
            delay += self.fx.rng.uniform(-self.toxic.jitter_ms, self.toxic.jitter_ms)
        return [item.held(self.name, max(start, item.due + max(0.0, delay) / 1000))]


class _Bandwidth(_Paced):
    """``bandwidth.go``: each chunk takes ``len / rate`` after the one before it; a chunk
    over 100 ms of data goes out in 100 ms pieces."""

    def data(self, item: Item, start: float) -> list[Item]:
        per_s = self.toxic.kb_per_s * 1000
        piece = max(1, int(per_s / 10))
        out: list[Item] = []
        data, t = item.data, start
        while len(data) > piece:
            t += 0.1
            out.append(Item(t, DATA, data[:piece], (*item.holders, self.name)))
            data = data[piece:]
        out.append(Item(t + len(data) / per_s, DATA, data, (*item.holders, self.name)))
        return out


def slice_points(size: int, avg: int, variation: int, rng: random.Random) -> list[int]:
    """Where ``slicer.go`` cuts ``size`` bytes: halve (each cut moved by up to
    ``variation``) until a piece is at most ``avg + variation``; the ends of the pieces."""
    ends: list[int] = []

    def cut(start: int, end: int) -> None:
        if (end - start) - avg <= variation:
            ends.append(end)
            return
        shift = rng.randrange(2 * variation) - variation if variation else 0
        mid = start + (end - start) // 2 + shift
        cut(start, mid)
        cut(mid, end)

    cut(0, size)
    return ends


class _Slicer(_Paced):
    """``slicer.go``: pieces of about ``avg_size`` bytes, ``delay`` apart (and after)."""

    def data(self, item: Item, start: float) -> list[Item]:
        delay = self.toxic.ms / 1000
        out: list[Item] = []
        begin = 0
        for index, end in enumerate(slice_points(len(item.data), self.toxic.avg_size,
                                                 self.toxic.size_variation, self.fx.rng)):
            piece = Item(item.due, DATA, item.data[begin:end], item.holders)
            out.append(piece.held(self.name, start + index * delay))
            begin = end
        self.free = start + len(out) * delay  # the delay follows the last piece too
        return out


class _SlowClose(_Paced):
    """``slow_close.go``: data passes; the end goes on ``delay`` after it arrived."""

    def data(self, item: Item, start: float) -> list[Item]:
        return [item.held(self.name, start)]

    def end(self, start: float) -> float:
        return start + self.toxic.ms / 1000


class _LimitData(Stage):
    """``limit_data.go``: pass ``bytes`` bytes (counted from when the toxic applied), then
    close the connection."""

    def __init__(self, name: str, toxic: Toxic, fx: Effects) -> None:
        super().__init__(name, toxic, fx)
        self.passed = 0
        self.closed = False

    def feed(self, items: list[Item]) -> list[Item]:
        out: list[Item] = []
        for item in items:
            if self.closed:
                break
            if item.kind != DATA:
                out.append(item)
                continue
            room = self.toxic.limit - self.passed
            if room > 0:
                part = item.data[:room]
                self.passed += len(part)
                out.append(item if len(part) == len(item.data)
                           else Item(item.due, DATA, part, item.holders))
            if self.passed >= self.toxic.limit:
                self.closed = True
                out.append(Item(item.due, CLOSE, b"", item.holders))
        return out


class _Timeout(Stage):
    """``timeout.go``: drop all data; close ``timeout`` ms after the toxic applied. The
    end of the stream is held too (Toxiproxy passes it on), so that ``timeout(0)`` is
    a stall that lasts until the client's own timeout whatever the upstream does."""

    def __init__(self, name: str, toxic: Toxic, fx: Effects, now: float) -> None:
        super().__init__(name, toxic, fx)
        if toxic.ms > 0:
            fx.at(name, now + toxic.ms / 1000, "close")

    def feed(self, items: list[Item]) -> list[Item]:
        return []


class _ResetPeer(Stage):
    """``reset_peer.go``: on the first item, wait ``timeout`` ms, then reset; drop all."""

    def __init__(self, name: str, toxic: Toxic, fx: Effects) -> None:
        super().__init__(name, toxic, fx)
        self.armed = False

    def feed(self, items: list[Item]) -> list[Item]:
        if items and not self.armed:
            self.armed = True
            self.fx.at(self.name, items[0].due + self.toxic.ms / 1000, "reset")
        return []


def make_stage(name: str, toxic: Toxic, fx: Effects, now: float) -> Stage:
    """The stage for ``toxic`` on a direction, applied at ``now``."""
    kind = toxic.kind
    if kind == "latency":
        return _Latency(name, toxic, fx)
    if kind == "bandwidth":
        return _Bandwidth(name, toxic, fx)
    if kind == "slicer":
        return _Slicer(name, toxic, fx)
    if kind == "slow_close":
        return _SlowClose(name, toxic, fx)
    if kind == "limit_data":
        return _LimitData(name, toxic, fx)
    if kind == "timeout":
        return _Timeout(name, toxic, fx, now)
    return _ResetPeer(name, toxic, fx)
