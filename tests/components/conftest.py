"""The ``storage`` fixture: each component test runs once per backend.

``memory`` keeps state in the component (the default); ``redis`` keeps it in a real
``redis-server`` (the plugin's ``redis_server`` fixture, emptied before each test), on
the test's clock (``time="clock"``) so virtual time drives both alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_resilience import MemoryStorage, RedisStorage, Storage


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> Iterator[Storage]:
    """A ``MemoryStorage`` or a ``RedisStorage`` on an empty real Redis."""
    if request.param == "memory":
        yield MemoryStorage()
        return
    server: Any = request.getfixturevalue("redis_server")
    server.flush()
    redis_storage = RedisStorage(server.url, time="clock")
    try:
        yield redis_storage
    finally:
        redis_storage.close()
