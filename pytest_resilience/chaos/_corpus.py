"""The chaos corpus: where chaos runs keep the fault plans that failed.

``--resilience-chaos-db`` (ini ``resilience_chaos_db``) names it: a ``redis://`` URL
(Hypothesis' ``RedisExampleDatabase``, shared by every CI runner that points at it) or
a directory (``DirectoryBasedExampleDatabase``). Hypothesis replays the plans saved
under a test's key before it generates new ones, so a plan one runner found is tried
first by all the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hypothesis.database import ExampleDatabase

__all__ = ["KEY_PREFIX", "example_database"]

#: Prefix of the corpus keys in Redis.
KEY_PREFIX = b"pytest-resilience-chaos:"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def example_database(value: str) -> ExampleDatabase | None:
    """The Hypothesis example database that ``value`` names (``""``: none).

    Raises ``ValueError`` naming the fix when Redis cannot be reached or the ``redis``
    package is missing.
    """
    value = value.strip()
    if not value:
        return None
    if not value.startswith(_REDIS_SCHEMES):
        from hypothesis.database import DirectoryBasedExampleDatabase

        return DirectoryBasedExampleDatabase(Path(value).expanduser())
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError as exc:
        raise ValueError(f"{value}: the chaos corpus in Redis needs the redis package "
                         f"({exc}). Install pytest-resilience[redis].") from None
    client = redis.Redis.from_url(value, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        client.close()
        raise ValueError(f"{value}: cannot reach Redis for the chaos corpus "
                         f"({type(exc).__name__}: {exc}). Start it, or drop the option.") from None
    return RedisExampleDatabase(client, key_prefix=KEY_PREFIX)
