"""A model cache, as a user would write it: models load on demand, and under memory
pressure the least recently used ones are dropped before another is loaded."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import psutil


class ModelCache:
    """Correct: above ``high_water`` percent of memory used, frees before it loads."""

    def __init__(self, load: Callable[[str], Any], high_water: float = 90.0) -> None:
        self._load = load
        self.high_water = high_water
        self._models: OrderedDict[str, Any] = OrderedDict()

    def _under_pressure(self) -> bool:
        return psutil.virtual_memory().percent >= self.high_water

    def get(self, name: str) -> Any:
        if name in self._models:
            self._models.move_to_end(name)
            return self._models[name]
        if self._models and self._under_pressure():
            self._models.popitem(last=False)
        model = self._models[name] = self._load(name)
        return model


class GreedyModelCache(ModelCache):
    """The bug: never looks at memory, so under pressure it loads one more model and the
    process is OOM-killed."""

    def _under_pressure(self) -> bool:
        return False
