"""check_ttl: an entry is visible for exactly its TTL on the history's clock."""

from __future__ import annotations

import pytest

from pytest_resilience import History
from pytest_resilience.checks import check_ttl


def cache(*rows: tuple[str, float, str]) -> History:
    history = History()
    for what, t, key in rows:
        attrs: dict[str, object] = {"key": key, "bytes": 1}
        kind, _, cause = what.partition(":")
        if cause:
            attrs["cause"] = cause
        history.append(f"cache.{kind}", "c", time=t, attrs=attrs)
    return history


def test_an_entry_that_lives_its_ttl_passes() -> None:
    history = cache(("load", 0, "a"), ("hit", 59, "a"), ("miss", 60, "a"), ("load", 61, "a"),
                    ("hit", 100, "a"), ("evict:lru", 101, "a"), ("miss", 102, "a"))
    verdict = check_ttl(history, ttl=60)
    assert verdict.ok, verdict.explanation
    assert verdict.explanation == ("4 read(s) and eviction(s) of stored entries kept the 60s "
                                   "TTL on the history's clock.")


def test_visible_past_its_ttl() -> None:
    verdict = check_ttl(cache(("load", 0, "a"), ("hit", 61, "a")), ttl=60)
    assert verdict.explanation == (
        "Cache 'c' entry 'a' was still visible 61s after it was stored, past its 60s TTL. "
        "Events: #0 cache.load[c]@0s(key='a', bytes=1); #1 cache.hit[c]@61s(key='a', "
        "bytes=1).")


@pytest.mark.parametrize("gone", ["miss", "evict:ttl"])
def test_expiring_early(gone: str) -> None:
    verdict = check_ttl(cache(("load", 0, "a"), (gone, 1, "a")), ttl=60)
    assert "entry 'a' expired 1s after it was stored, before its 60s TTL" in (
        verdict.explanation)


def test_a_bad_ttl_is_refused() -> None:
    with pytest.raises(ValueError) as info:
        check_ttl(History(), ttl=-1)
    assert str(info.value) == "ttl=-1 is not a time to live. Pass seconds > 0."
