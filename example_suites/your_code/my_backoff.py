"""A retry loop, as a user would write it: back off exponentially between attempts."""

from __future__ import annotations

import time
from collections.abc import Callable


class Upstream:
    """A dependency that fails ``failures`` times, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def get(self) -> str:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("connection reset")
        return "data"


def fetch_with_backoff(get: Callable[[], str], attempts: int = 4) -> str:
    """Correct: waits 0.1 s, 0.2 s, 0.4 s ... between attempts."""
    for attempt in range(attempts):
        try:
            return get()
        except ConnectionError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")


def fetch_hammering(get: Callable[[], str], attempts: int = 4) -> str:
    """The bug: retries at once, hammering an upstream that is already struggling."""
    for attempt in range(attempts):
        try:
            return get()
        except ConnectionError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
