"""What the benchmark modules share: a private event loop and the async call loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

#: Awaited calls per benchmark round of an async benchmark (per call = time / CALLS).
CALLS = 1000


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A private event loop, closed after the benchmark."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


@pytest.fixture
def run_many(loop: asyncio.AbstractEventLoop) -> Callable[[Callable[[], Any]], Callable[[], None]]:
    """``run_many(make)``: a round of 1,000 ``await make()`` in one running loop."""

    def build(make: Callable[[], Any]) -> Callable[[], None]:
        async def many() -> None:
            for _ in range(CALLS):
                await make()

        return lambda: loop.run_until_complete(many())

    return build
