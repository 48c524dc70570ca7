"""Find and rebind early-bound references to a clock function.

``from time import monotonic``, ``def f(timer=time.monotonic)``, ``partial(time.monotonic)``
and objects that stored ``time.monotonic`` keep the original function however
``time.monotonic`` is patched later. ``gc.get_referrers`` finds them all: module and
instance dicts, class dicts, default-argument tuples, ``functools.partial`` objects,
lists and ``__slots__``. Each one found becomes a ``Ref`` that can swap and restore.
"""

from __future__ import annotations

import functools
import gc
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

from faults._patch import stored

__all__ = ["DEFAULT_EXCLUDE", "Ref", "find_refs"]

#: Modules (and their submodules) left on the real clock: the interpreter's own waiting
#: machinery (a wait that straddles the undo must not run long), test tooling, and us.
DEFAULT_EXCLUDE: tuple[str, ...] = (
    "asyncio", "concurrent", "multiprocessing", "queue", "selectors", "socket",
    "socketserver", "ssl", "subprocess", "threading", "sched", "_pytest", "pytest",
    "pluggy", "hypothesis", "faults", "pytest_resilience", "time_machine", "xdist",
)


class Ref:
    """One place that holds the original function, and how to write it."""

    def __init__(self, where: str, get: Callable[[], Any], put: Callable[[Any], None]) -> None:
        self.where = where
        self._get = get
        self._put = put
        self._original: Any = None
        self._replacement: Any = None

    def swap(self, replacement: Any) -> None:
        """Write ``replacement``, remembering what was there."""
        self._original = self._get()
        self._replacement = replacement
        self._put(replacement)

    def restore(self) -> None:
        """Put the original back, unless somebody else replaced ours meanwhile."""
        if self._get() is self._replacement:
            self._put(self._original)

    def __repr__(self) -> str:
        return f"<Ref {self.where}>"


def _excluded(module: str | None, exclude: tuple[str, ...]) -> bool:
    if not module:
        return False
    return any(module == name or module.startswith(name + ".") for name in exclude)


def _owner_of_dict(d: dict[str, Any]) -> tuple[str, Any] | None:
    """What a dict belongs to: ('module', mod), ('class', cls) or ('instance', obj)."""
    for owner in gc.get_referrers(d):
        if isinstance(owner, types.ModuleType) and owner.__dict__ is d:
            return "module", owner
        if isinstance(owner, type):
            return "class", owner
        if getattr(owner, "__dict__", None) is d:
            return "instance", owner
    return None


def _dict_refs(d: dict[str, Any], target: Any, exclude: tuple[str, ...]) -> Iterable[Ref]:
    keys = [k for k, v in list(d.items()) if v is target and isinstance(k, str)]
    if not keys:
        return
    owner = _owner_of_dict(d)
    if owner is None:  # a function's __kwdefaults__, or a loose dict left alone
        fns = [f for f in gc.get_referrers(d)
               if isinstance(f, types.FunctionType) and f.__kwdefaults__ is d]
        if not fns:
            return
        module, label = fns[0].__module__, f"{fns[0].__module__}.{fns[0].__qualname__} " \
            "keyword default"
    elif owner[0] == "module":
        module, label = owner[1].__name__, f"module {owner[1].__name__} global"
    elif owner[0] == "class":
        cls = owner[1]
        module, label = cls.__module__, f"class {cls.__module__}.{cls.__qualname__} attribute"
    else:
        cls = type(owner[1])
        module, label = cls.__module__, f"{cls.__module__}.{cls.__qualname__} instance attribute"
    if _excluded(module, exclude):
        return
    for key in keys:
        if owner is not None and owner[0] == "class":
            get, put = functools.partial(stored, owner[1], key), \
                functools.partial(setattr, owner[1], key)
        else:
            get, put = functools.partial(d.__getitem__, key), functools.partial(d.__setitem__, key)
        yield Ref(f"{label} {key!r}", get, put)


def _defaults_refs(defaults: tuple[Any, ...], target: Any,
                   exclude: tuple[str, ...]) -> Iterable[Ref]:
    for fn in gc.get_referrers(defaults):
        if not isinstance(fn, types.FunctionType) or fn.__defaults__ is not defaults:
            continue
        if _excluded(fn.__module__, exclude):
            continue
        for index, value in enumerate(defaults):
            if value is target:
                yield _default_ref(fn, index)


def _default_ref(fn: types.FunctionType, index: int) -> Ref:
    def get() -> Any:
        return (fn.__defaults__ or ())[index]

    def put(value: Any) -> None:
        current = list(fn.__defaults__ or ())
        current[index] = value
        fn.__defaults__ = tuple(current)

    return Ref(f"{fn.__module__}.{fn.__qualname__} default argument #{index}", get, put)


def _partial_ref(p: functools.partial[Any]) -> Ref:
    def get() -> Any:
        return p.func

    def put(value: Any) -> None:
        p.__setstate__((value, p.args, p.keywords, getattr(p, "__dict__", None)))  # type: ignore[attr-defined]

    return Ref(f"functools.partial of {p.func!r}", get, put)


def _object_refs(obj: Any, target: Any, exclude: tuple[str, ...]) -> Iterable[Ref]:
    """Attributes of an instance (inline ``__dict__`` values or ``__slots__``)."""
    cls = type(obj)
    if _excluded(cls.__module__, exclude) or isinstance(
        obj, types.FrameType | types.FunctionType | types.CellType | type | types.ModuleType
    ):
        return
    names: list[str] = []
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        names.extend(k for k, v in attrs.items() if v is target and isinstance(k, str))
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if isinstance(name, str) and name != "__dict__" and getattr(obj, name, None) is target:
                names.append(name)
    for name in names:
        yield Ref(f"attribute {name!r} of a {cls.__module__}.{cls.__qualname__}",
                  functools.partial(stored, obj, name), functools.partial(setattr, obj, name))


def find_refs(target: Any, *, exclude: tuple[str, ...] = DEFAULT_EXCLUDE,
              skip: Iterable[Any] = ()) -> list[Ref]:
    """Every rebindable reference to ``target`` outside the ``exclude``d modules.

    ``skip`` lists containers to leave alone (the caller's own saved originals).
    """
    skipped = {id(s) for s in skip}
    frame = sys._getframe()
    refs: list[Ref] = []
    for holder in gc.get_referrers(target):
        if id(holder) in skipped or holder is frame:
            continue
        if isinstance(holder, dict):
            refs.extend(_dict_refs(holder, target, exclude))
        elif isinstance(holder, tuple):
            refs.extend(_defaults_refs(holder, target, exclude))
        elif isinstance(holder, functools.partial):
            if holder.func is target:
                refs.append(_partial_ref(holder))
        elif not isinstance(holder, list | set):  # containers: too often transient
            refs.extend(_object_refs(holder, target, exclude))
    return refs
