"""What an attribute is made of, and wrapping it while keeping its descriptor kind.

``getattr`` unwraps ``staticmethod``/``classmethod`` and binds functions; a replacement
built from its result has the wrong kind (a staticmethod turned into a plain function then
receives the instance). ``stored`` reads the raw entry, ``wrap_stored`` wraps the function
inside it. Replacing and restoring is ``pytest_resilience.patching``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["stored", "wrap_stored"]


def stored(owner: object, name: str) -> Any:
    """What ``owner.name`` is made of, descriptors included.

    On a class: the raw entry found along the MRO (a ``staticmethod`` stays one). On
    anything else: the owner's own entry, else the value ``getattr`` computes (a bound
    method, an inherited or lazy value). ``AttributeError`` when there is none.
    """
    if isinstance(owner, type):
        return inspect.getattr_static(owner, name)
    try:
        return vars(owner)[name]
    except (TypeError, KeyError):  # no __dict__ (slots), or not an own entry
        return getattr(owner, name)


def wrap_stored(found: Any, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Any:
    """``wrap`` applied to the function inside ``found``, keeping its descriptor kind."""
    if isinstance(found, staticmethod):
        return staticmethod(wrap(found.__func__))
    if isinstance(found, classmethod):
        return classmethod(wrap(found.__func__))
    return wrap(found)
