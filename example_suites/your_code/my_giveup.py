"""A retry loop that gives up, as a user would write it: after the last attempt the caller
must learn that the call failed."""

from __future__ import annotations

import time
from collections.abc import Callable


def fetch_or_raise(get: Callable[[], str], attempts: int = 3) -> str:
    """Correct: the last error reaches the caller."""
    for attempt in range(attempts):
        try:
            return get()
        except ConnectionError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")


def fetch_or_none(get: Callable[[], str], attempts: int = 3) -> str | None:
    """The bug: the last error is swallowed; the caller gets ``None`` and carries on."""
    for attempt in range(attempts):
        try:
            return get()
        except ConnectionError:
            time.sleep(0.1 * 2**attempt)
    return None
