"""Argument checks for your own components and fault families, the ones ours use.

Each takes the value and the argument's name and returns the value (converted where
the name says so: ``seconds`` gives a float, ``path`` a ``Path``); a wrong kind of value
is a ``TypeError``, a value out of range a ``ValueError``, and every message reads
``"<name>=<value> is not <what>. Pass <what is accepted>."`` with a short repr that no
value can break (``show``: a 10,000-digit int, a broken ``__repr__``, a list nested
5,000 deep)::

    from pytest_resilience import validate

    class Poller:
        def __init__(self, *, interval: float = 1.0, clock=None, history=None):
            self.interval = validate.seconds(interval, "interval", positive=True)
            self.clock = validate.clock(clock)          # None: the system clock
            self.history = validate.history(history)    # None: the active history

``parsing(name, value, what, accepted)`` turns any failure while reading a document
(``from_dict``) into one such ``ValueError``.
"""

from __future__ import annotations

from pytest_resilience._validate import (
    callable_or_none,
    callables,
    check,
    clock,
    count,
    exception_types,
    fraction,
    history,
    number,
    one_of,
    parsing,
    path,
    seconds,
    seed,
    show,
    text,
)

__all__ = [
    "callable_or_none",
    "callables",
    "check",
    "clock",
    "count",
    "exception_types",
    "fraction",
    "history",
    "number",
    "one_of",
    "parsing",
    "path",
    "seconds",
    "seed",
    "show",
    "text",
]
