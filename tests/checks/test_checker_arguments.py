"""A checker's wrong setting is refused before it reads the history, naming the argument,
the value and what is accepted (issue 14, defect 11: these failed inside, e.g. 'NoneType'
object is not iterable, or formatted the value with a repr that raised)."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest

from pytest_resilience import History
from pytest_resilience.checks import (
    check_amplification,
    check_latency,
    check_retry,
    check_rollback,
    check_ttl,
)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda h: check_amplification(h, max_ratio="2"), TypeError,
     "max_ratio='2' is not an amplification budget. Pass a number >= 1, e.g. 1.2 (20% more "
     "calls than requests)."),
    (lambda h: check_amplification(h, minimum=1.5), TypeError,
     "minimum=1.5 is not a number of calls. Pass an int >= 0."),
    (lambda h: check_amplification(h, layer=""), ValueError,
     "layer='' is not a layer. Pass the source of a layer's calls (a non-empty string), or "
     "None for every layer."),
    (lambda h: check_latency(h, ["p95<1s"], kind=None), TypeError,
     "kind=None is not an event kind. Pass a non-empty string."),
    (lambda h: check_retry(h, source=[]), TypeError,
     "source=[] is not an event source. Pass the source of the events to judge (a non-empty "
     "string), or None for every source."),
    (lambda h: check_retry(h, not_retryable=None), TypeError,
     "not_retryable=None is not a list of errors. Pass a list of exception classes or class "
     "names, e.g. [ValueError, 'HTTPError']."),
    (lambda h: check_retry(h, significance=None), TypeError,
     "significance=None is not a probability. Pass a number in (0, 1), such as 1e-6."),
    (lambda h: check_retry(h, backoff=1.0), TypeError,
     "backoff=1.0 is not a backoff. Pass a Backoff (e.g. Backoff.exponential(...)), or None."),
    (lambda h: check_rollback(None, {}), TypeError,
     "before=None is not a snapshot. Pass a mapping id -> record, e.g. "
     "snapshot(collection)."),
    (lambda h: check_ttl(h, ttl=10**30 * 10**400), ValueError,
     "ttl=<int of 1429 bits> is not a time to live. Pass seconds > 0."),
    (lambda h: check_ttl(h, ttl=1, tolerance=-1), ValueError,
     "tolerance=-1 is not a tolerance. Pass a finite number >= 0."),
])
def test_a_wrong_setting_is_named(call: Callable[[History], Any], error: type[Exception],
                                  message: str) -> None:
    with pytest.raises(error) as info:
        call(History())
    assert str(info.value) == message


def test_a_fractional_ttl_is_judged_as_seconds() -> None:
    """Regression: Fraction(1, 3) passed the check, then broke the verdict's format."""
    assert check_ttl(History(), ttl=Fraction(1, 3)).explanation
