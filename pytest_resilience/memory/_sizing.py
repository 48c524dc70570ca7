"""Byte sizes of cached values, and releasing them (GPU memory included)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["measure_bytes", "release_memory"]


def measure_bytes(value: Any) -> int:
    """Bytes held by ``value``: torch tensors and modules (parameters and buffers) by
    storage size, objects with ``nbytes`` (numpy), bytes-likes by length, containers by
    their items; anything else by ``sys.getsizeof``."""
    torch = sys.modules.get("torch")
    if torch is not None:
        if isinstance(value, torch.Tensor):
            return int(value.untyped_storage().nbytes())
        if isinstance(value, torch.nn.Module):
            tensors = [*value.parameters(), *value.buffers()]
            return sum(int(t.untyped_storage().nbytes()) for t in tensors)
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value) if not isinstance(value, memoryview) else value.nbytes
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    if isinstance(value, Mapping):
        return sum(measure_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(measure_bytes(v) for v in value)
    return sys.getsizeof(value)


def release_memory() -> None:
    """Collect garbage and, when torch is loaded and CUDA usable, empty its cache."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
