"""The one way ``faults`` replaces an attribute: ``patch(owner, name, new)`` and
``Patch.restore()``, which puts back exactly the object that was stored there.

``getattr`` is not that object: on a class it unwraps ``staticmethod``/``classmethod``
and binds functions, and on a module or instance it may find an inherited or lazily
computed value that was never stored. Restoring what ``getattr`` returned turns a
staticmethod into a plain function (which then receives the instance) or freezes a
lazy value in place. So ``patch`` remembers the raw entry of the owner's own
``__dict__`` (or that there was none, in which case ``restore`` deletes its
replacement and the inherited or lazy value shows again).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pytest_resilience import _validate

__all__ = ["Patch", "patch", "patched", "stored", "wrap_stored"]

_MISSING: Any = object()


def _own(owner: object, name: str) -> Any:
    """The object stored under ``name`` in ``owner``'s own namespace, or ``_MISSING``."""
    try:
        namespace = object.__getattribute__(owner, "__dict__")
    except AttributeError:  # __slots__ only: a slot holds the value itself
        return getattr(owner, name, _MISSING)
    return namespace.get(name, _MISSING)


def stored(owner: object, name: str) -> Any:
    """What ``owner.name`` is made of, descriptors included (``_MISSING``-free).

    On a class: the raw entry found along the MRO (a ``staticmethod`` stays one). On
    anything else: the owner's own entry, else the value ``getattr`` computes (a bound
    method, an inherited or lazy value). ``AttributeError`` when there is none.
    """
    if isinstance(owner, type):
        return inspect.getattr_static(owner, name)
    own = _own(owner, name)
    return getattr(owner, name) if own is _MISSING else own


def wrap_stored(found: Any, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Any:
    """``wrap`` applied to the function inside ``found``, keeping its descriptor kind."""
    if isinstance(found, staticmethod):
        return staticmethod(wrap(found.__func__))
    if isinstance(found, classmethod):
        return classmethod(wrap(found.__func__))
    return wrap(found)


class Patch:
    """One applied replacement of ``owner.name``; ``restore()`` undoes it (idempotent)."""

    __slots__ = ("_saved", "active", "name", "owner", "raw", "replacement")

    def __init__(self, owner: object, name: str, replacement: Any, *, raw: bool) -> None:
        self.owner = owner
        self.name = name
        self.replacement = replacement
        self.raw = raw
        self._saved = _own(owner, name)
        self.active = False

    def apply(self) -> Patch:
        """Store the replacement (a ``TypeError`` names what refused it)."""
        try:
            self._set(self.replacement)
        except (AttributeError, TypeError) as exc:
            raise TypeError(f"target=({_validate.show(self.owner)}, {self.name!r}) cannot be "
                            f"patched ({exc}). Pass a module, class or instance attribute "
                            "that can be assigned.") from None
        self.active = True
        return self

    def _set(self, value: Any) -> None:
        if self.raw and not isinstance(self.owner, type):
            object.__setattr__(self.owner, self.name, value)
        else:
            setattr(self.owner, self.name, value)

    def restore(self) -> None:
        """Put back exactly what was stored before, or remove the replacement."""
        if not self.active:
            return
        self.active = False
        if self._saved is not _MISSING:
            self._set(self._saved)
        elif self.raw and not isinstance(self.owner, type):
            object.__delattr__(self.owner, self.name)
        else:
            delattr(self.owner, self.name)

    @property
    def original(self) -> Any:
        """The object stored before the patch (``None`` when there was none of its own)."""
        return None if self._saved is _MISSING else self._saved

    def __repr__(self) -> str:
        state = "active" if self.active else "restored"
        return f"<Patch {self.name!r} of {_validate.show(self.owner)} {state}>"


def patch(owner: object, name: str, replacement: Any, *, raw: bool = False) -> Patch:
    """Replace ``owner.name`` with ``replacement`` now; ``restore()`` the result to undo.

    ``raw=True`` writes with ``object.__setattr__`` (objects whose ``__setattr__``
    refuses or validates, such as chromadb's models).
    """
    return Patch(owner, name, replacement, raw=raw).apply()


@contextmanager
def patched(owner: object, name: str, replacement: Any, *, raw: bool = False) -> Iterator[Patch]:
    """``patch`` for a ``with`` block, restored when it ends however it ends."""
    applied = patch(owner, name, replacement, raw=raw)
    try:
        yield applied
    finally:
        applied.restore()
