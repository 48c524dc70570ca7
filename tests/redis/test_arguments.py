"""``RedisStorage`` refuses a wrong setting at construction, naming it, before it ever
connects (issue 14, defect 11: ``url=''`` raised redis-py's ValueError, which does not
name ``url``; a policy whose repr raised escaped as that error)."""

from __future__ import annotations

import pytest

from pytest_resilience import RedisStorage

pytest.importorskip("redis", reason="RedisStorage needs redis-py (the redis extra)")


class _Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"url": ""}, ValueError,
     "url='' is not a Redis URL (Redis URL must specify one of the following schemes "
     "(redis://, rediss://, unix://)). Pass 'redis://host:port/db' (or rediss://, unix://)."),
    ({"url": None}, TypeError,
     "url=None is not a Redis URL or client. Pass 'redis://host:port/db' (or rediss://, "
     "unix://) or a redis.Redis instance."),
    ({"policy": "open"}, ValueError,
     "policy='open' is not a failure policy. Pass FailurePolicy.FAIL_OPEN, "
     "FailurePolicy.FAIL_CLOSED, 'fail_open' or 'fail_closed'."),
    ({"time": ["server"]}, ValueError,
     "time=['server'] is not a time source. Pass 'server' (Redis TIME) or 'clock' (each "
     "component's clock)."),
    ({"prefix": None}, TypeError,
     "prefix=None is not a string. Pass a key prefix such as 'myservice:'."),
    ({"timeout": 10**400}, ValueError,
     "timeout=<int of 1329 bits> is not valid. Pass seconds > 0."),
    ({"name": ""}, ValueError, "name='' is not a name. Pass a non-empty string."),
])
def test_a_wrong_setting_is_named(kwargs: dict[str, object], error: type[Exception],
                                  message: str) -> None:
    with pytest.raises(error) as info:
        RedisStorage(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_an_unprintable_policy_is_named() -> None:
    with pytest.raises(TypeError) as info:
        RedisStorage(policy=_Unprintable())  # type: ignore[arg-type]
    assert str(info.value).startswith("policy=<_Unprintable instance at 0x")
    assert str(info.value).endswith("> is not a failure policy. Pass FailurePolicy.FAIL_OPEN, "
                                    "FailurePolicy.FAIL_CLOSED, 'fail_open' or 'fail_closed'.")
