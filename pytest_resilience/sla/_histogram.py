"""``LatencyHistogram``: a fixed-memory, exactly mergeable log-bucket latency histogram.

Bucket ``k`` (``k >= 1``) holds values in ``(lowest * g**(k-1), lowest * g**k]`` with
``g = (1 + alpha) / (1 - alpha)``; reporting ``2 * lowest * g**k / (g + 1)`` for it is off
by at most ``alpha`` (0.25%) relative to any value in the bucket (DDSketch's mapping).
Bucket 0 holds values up to ``lowest`` (1 ns); values above ``highest`` (1e6 s) share the
last bucket, and every reported figure is clamped to the exact ``min``/``max`` seen.
Memory is fixed: 6,910 32-bit bucket counters plus a 2,048-value record buffer (44 KiB,
what 3,456 64-bit counters at alpha 0.5% took). The counters widen to 64 bits only once
a histogram holds more than 2**31 - 1 samples (then no bucket can overflow 32 bits).

Wire format ``v`` 2 (alpha 0.25%); ``from_dict`` refuses version 1 (alpha 0.5%), whose
buckets do not nest in these.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_resilience import _validate

__all__ = ["ALPHA", "LatencyHistogram", "min_samples"]

#: Relative error bound of every quantile.
ALPHA = 0.0025
_GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
_INV_LOG_GAMMA = 1.0 / _LOG_GAMMA
_LOWEST = 1e-9
_HIGHEST = 1e6
_BUCKETS = math.ceil(math.log(_HIGHEST / _LOWEST) * _INV_LOG_GAMMA) + 2
_OFFSET = math.log(_LOWEST) * _INV_LOG_GAMMA
_FORMAT_VERSION = 2
_BUFFER_SIZE = 2048
_INF = math.inf
_NARROW_MAX = 2**31 - 1  # samples a histogram of 32-bit counters may hold


def min_samples(q: float) -> int:
    """Samples needed before quantile ``q`` is reported: ``10 / (1 - q)`` (p99: 1,000)."""
    q = _validate.number(q, "q", low=0.0, high=1.0, high_open=True, what="a quantile",
                         accepted="0 <= q < 1 (0.99 for p99)")
    return math.ceil(10.0 / (1.0 - q) - 1e-6)


class LatencyHistogram:
    """Latencies in seconds, log-bucketed with relative error <= ``ALPHA``, in fixed memory.

    ``record`` appends to a small fixed buffer that is folded into the buckets in bulk
    (numpy) when full or when queried; ``record_many`` takes an iterable or numpy array.
    ``merge`` adds another histogram exactly; ``to_dict``/``from_dict`` give a compact
    form made of plain builtins (safe for xdist's ``workeroutput`` and JSON).
    """

    __slots__ = ("_buffer", "_counts", "_max", "_min", "_n", "_np", "_total")

    alpha = ALPHA

    def __init__(self) -> None:
        self._counts = array("i", bytes(4 * _BUCKETS))
        self._np: Any = None  # numpy's view of _counts, made on first use
        self._buffer = array("d")
        self._n = 0
        self._total = 0.0
        self._min = math.inf
        self._max = -math.inf

    # -- recording -------------------------------------------------------------------------
    def record(self, seconds: float) -> None:
        """Add one latency (seconds >= 0, finite)."""
        if not 0.0 <= seconds < _INF:
            raise ValueError(_bad_value(seconds))
        buffer = self._buffer
        buffer.append(seconds)
        if len(buffer) >= _BUFFER_SIZE:
            self._flush()

    def record_many(self, values: Iterable[float]) -> None:
        """Add many latencies at once; numpy arrays take a vectorised path."""
        import numpy as np

        data = np.asarray(values, dtype=np.float64).ravel()
        if data.size == 0:
            return
        bad = ~np.isfinite(data) | (data < 0)
        if bad.any():
            raise ValueError(_bad_value(float(data[bad][0])))
        self._fold(data)

    def _flush(self) -> None:
        if self._buffer:
            import numpy as np

            self._fold(np.frombuffer(self._buffer, dtype=np.float64))
            del self._buffer[:]

    def _fold(self, data: Any) -> None:
        import numpy as np

        clipped = np.clip(data, _LOWEST, _HIGHEST)
        index = np.ceil(np.log(clipped) * _INV_LOG_GAMMA - _OFFSET).astype(np.int64)
        index[data <= _LOWEST] = 0
        index[data > _HIGHEST] = _BUCKETS - 1
        np.clip(index, 0, _BUCKETS - 1, out=index)
        self._room(int(data.size))
        low = int(index.min())
        found = np.bincount(index - low)  # only the span of buckets the data reached
        self._view()[low:low + found.size] += found
        self._n += int(data.size)
        self._total += float(data.sum())
        self._min = min(self._min, float(data.min()))
        self._max = max(self._max, float(data.max()))

    def _room(self, more: int) -> None:
        """Widen the counters to 64 bits before they could overflow 32."""
        if self._counts.typecode == "i" and self._n + len(self._buffer) + more > _NARROW_MAX:
            self._counts = array("q", self._counts)
            self._np = None

    def _view(self) -> Any:
        """The counters as a numpy array (no copy; kept, as the counters never resize)."""
        view = self._np
        if view is None:
            import numpy as np

            view = self._np = np.frombuffer(
                self._counts, dtype=np.int32 if self._counts.typecode == "i" else np.int64)
        return view

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        """Add ``other``'s samples into this histogram (exact); returns ``self``."""
        if not isinstance(other, LatencyHistogram):
            raise TypeError(
                f"other={other!r} is not a LatencyHistogram. Merge histograms only with "
                "histograms (use LatencyHistogram.from_dict for serialised ones)."
            )
        self._flush()
        other._flush()
        self._room(other._n)
        counts = self._view()
        counts += other._view()
        self._n += other._n
        self._total += other._total
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)
        return self

    @classmethod
    def merged(cls, histograms: Iterable[LatencyHistogram]) -> LatencyHistogram:
        """A new histogram holding the union of ``histograms``."""
        out = cls()
        for histogram in histograms:
            out.merge(histogram)
        return out

    # -- queries ---------------------------------------------------------------------------
    @property
    def count(self) -> int:
        """Number of samples."""
        return self._n + len(self._buffer)

    @property
    def total(self) -> float:
        """Sum of all samples (seconds)."""
        self._flush()
        return self._total

    @property
    def min(self) -> float | None:
        """Smallest sample, exact; ``None`` when empty."""
        self._flush()
        return self._min if self._n else None

    @property
    def max(self) -> float | None:
        """Largest sample, exact; ``None`` when empty."""
        self._flush()
        return self._max if self._n else None

    @property
    def mean(self) -> float | None:
        """Exact mean, or ``None`` when empty."""
        self._flush()
        return self._total / self._n if self._n else None

    def quantile(self, q: float) -> float | None:
        """Quantile ``q`` within ``ALPHA``; ``None`` with too few samples.

        Same definition as ``numpy.quantile``'s default: rank ``q * (n - 1)``, linear
        interpolation between the two neighbouring order statistics.

        A quantile needs ``min_samples(q)`` samples; below that there is no honest
        figure (p99 of 40 samples is just the max), so none is given.
        """
        if self.count < min_samples(q):
            return None
        return self.quantile_unchecked(q)

    def quantile_unchecked(self, q: float) -> float:
        """Like ``quantile`` without the minimum-sample rule (for charts); needs samples."""
        self._flush()
        if not 0.0 <= q <= 1.0 or not self._n:
            raise ValueError(
                f"q={q!r} on {self._n} samples cannot be answered. Pass 0 <= q <= 1 "
                "on a non-empty histogram."
            )
        import numpy as np

        rank = q * (self._n - 1)
        low = math.floor(rank)
        seen = np.cumsum(self._view(), dtype=np.int64)
        # Order statistic k (from 0) lies in the first bucket holding more than k samples.
        lower = self._value(int(np.searchsorted(seen, low, side="right")))
        if rank == low:
            return lower
        upper = self._value(int(np.searchsorted(seen, low + 1, side="right")))
        return lower + (upper - lower) * (rank - low)

    def _value(self, index: int) -> float:
        if index == _BUCKETS - 1:  # the overflow bucket: only its largest value is known
            return self._max
        return min(max(_bucket_value(index), self._min), self._max)

    def buckets(self) -> list[tuple[float, int]]:
        """``(representative value, count)`` of every non-empty bucket, ascending."""
        import numpy as np

        self._flush()
        counts = self._view()
        return [(self._value(i), int(counts[i])) for i in np.flatnonzero(counts).tolist()]

    def memory_bytes(self) -> int:
        """Bytes held by the bucket array and the record buffer at their largest (fixed
        until the counters widen, past 2**31 - 1 samples)."""
        return len(self._counts) * self._counts.itemsize + _BUFFER_SIZE * 8

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain builtins: non-empty buckets as index/count lists."""
        import numpy as np

        self._flush()
        counts = self._view()
        index = np.flatnonzero(counts)
        return {
            "v": _FORMAT_VERSION,
            "alpha": ALPHA,
            "count": self._n,
            "sum": self._total,
            "min": self._min if self._n else None,
            "max": self._max if self._n else None,
            "index": index.tolist(),
            "counts": counts[index].tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyHistogram:
        """Inverse of ``to_dict``; refuses another format version or alpha, and any
        malformed data with one ``ValueError`` naming ``data``."""
        with _validate.parsing("data", data, "histogram data", "data written by to_dict"):
            return cls._from_dict(data)

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> LatencyHistogram:
        if not isinstance(data, Mapping):
            raise TypeError(f"{type(data).__name__} is not a mapping")
        if data.get("v") != _FORMAT_VERSION or data.get("alpha") != ALPHA:
            raise ValueError(
                f"v={data.get('v')!r} alpha={data.get('alpha')!r} is not supported (this "
                f"version reads v={_FORMAT_VERSION}, alpha={ALPHA}; version 1 buckets, alpha "
                "0.005, do not map onto these)"
            )
        out = cls()
        count = _validate.count(data["count"], "count", low=0)
        out._room(count)
        if data["index"]:
            import numpy as np

            index = np.asarray(data["index"], dtype=np.intp)
            counts = np.asarray(data["counts"], dtype=np.int64)
            if (index.shape != counts.shape or index.min() < 0 or index.max() >= _BUCKETS
                    or (np.diff(index) <= 0).any()):
                raise ValueError(
                    "histogram data has mismatched, out-of-range or unordered buckets. Pass "
                    "data written by to_dict."
                )
            out._room(int(counts.max()))  # a bucket past 32 bits, whatever "count" says
            out._view()[index] = counts
        out._n = count
        out._total = _validate.number(data["sum"], "sum", low=0.0)
        if out._n:
            out._min = _validate.number(data["min"], "min", low=0.0)
            out._max = _validate.number(data["max"], "max", low=out._min)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LatencyHistogram):
            return NotImplemented
        self._flush()
        other._flush()
        return (
            self._counts == other._counts
            and self._n == other._n
            and (self._min, self._max) == (other._min, other._max)
            and math.isclose(self._total, other._total, rel_tol=1e-9, abs_tol=1e-12)
        )

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave out numpy's view: it is made again from the copy's
        own counters."""
        return {name: getattr(self, name) for name in self.__slots__ if name != "_np"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
        self._np = None

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"LatencyHistogram(count={self.count}, min={self.min}, max={self.max})"


def _bucket_value(index: int) -> float:
    if index == 0:
        return 0.0
    return 2.0 * _LOWEST * _GAMMA**index / (_GAMMA + 1.0)


def _bad_value(value: float) -> str:
    return f"seconds={value!r} is not a latency. Pass a finite number of seconds >= 0."
