"""An HTTP fetch, as a user would write it: a stalled upstream must not stall the caller."""

from __future__ import annotations

import urllib.request


def fetch(url: str, timeout: float = 5.0) -> bytes:
    """Correct: every socket operation gives up after ``timeout`` seconds."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
    return body


def fetch_forever(url: str, timeout: float = 5.0) -> bytes:
    """The bug: ``timeout`` never reaches ``urlopen``, so a stalled upstream blocks forever."""
    with urllib.request.urlopen(url) as response:
        body: bytes = response.read()
    return body
