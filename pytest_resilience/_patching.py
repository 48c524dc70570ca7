"""Replacing an attribute for a while, and putting back exactly what was stored there.

``getattr`` is not what is stored: on a class it unwraps ``staticmethod``/``classmethod``
and binds functions, on an instance it finds the class's method, on a module it may run a
lazy ``__getattr__``. Restoring what ``getattr`` returned turns a staticmethod into a plain
function or leaves an inherited value behind as an own attribute. So a ``Patch`` remembers
the raw entry of the owner's own namespace (or the value a data descriptor such as
``__defaults__`` or a slot holds), or that there was none, in which case ``restore``
deletes the replacement and the inherited or lazy value shows again. This is the one
implementation: the observers here and the fault injectors in ``faults`` (through
``pytest_resilience.patching``) all patch with it.

``intercept(target, name, interceptor, label=)`` replaces one method or function with a
wrapper that hands each call to the interceptor, keeping the descriptor kind (a
staticmethod stays one) and sync/async nature. Special methods (``__getitem__``) are
looked up on the type, so for an instance they are wrapped on its class and intercept
only calls on that instance.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["MISSING", "Interceptor", "Patch", "intercept", "own_entry", "patch", "patched",
           "plain_wrapper"]

#: Marks "nothing stored under that name".
MISSING: Any = object()


def own_entry(owner: object, name: str) -> Any:
    """What ``owner`` itself stores under ``name``, or ``MISSING``: the raw entry of its own
    ``__dict__``, else the value held by a data descriptor of its type (a slot,
    ``__defaults__``), else ``MISSING`` (inherited, lazy or absent)."""
    try:
        namespace = object.__getattribute__(owner, "__dict__")
    except AttributeError:
        namespace = {}
    if name in namespace:
        return namespace[name]
    try:
        descriptor = inspect.getattr_static(type(owner), name)
    except AttributeError:
        return MISSING
    if not hasattr(type(descriptor), "__set__"):
        return MISSING
    return getattr(owner, name, MISSING)


class Patch:
    """One replacement of ``owner.name``: ``apply()`` stores it, ``restore()`` puts back
    exactly what was stored before, or removes it (idempotent).

    ``raw=True`` writes with ``object.__setattr__`` (objects whose ``__setattr__`` refuses
    or validates, such as chromadb's models). ``label`` names the target in the error a
    refused patch raises (default ``Owner.name``).
    """

    __slots__ = ("_saved", "active", "label", "name", "owner", "raw", "replacement")

    def __init__(self, owner: object, name: str, replacement: Any, *, raw: bool = False,
                 label: str | None = None) -> None:
        self.owner = owner
        self.name = name
        self.replacement = replacement
        self.raw = raw
        self.label = f"{_show(owner)}.{name}" if label is None else label
        self._saved = MISSING
        self.active = False

    def apply(self) -> Patch:
        """Store the replacement; a ``TypeError`` names what refused it."""
        saved = own_entry(self.owner, self.name)
        try:
            self._set(self.replacement)
        except (AttributeError, TypeError) as exc:
            raise TypeError(f"{self.label} cannot be replaced ({exc}). Pass a module, class "
                            "or instance attribute that can be assigned.") from None
        self._saved = saved
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
        if self._saved is not MISSING:
            self._set(self._saved)
        elif self.raw and not isinstance(self.owner, type):
            object.__delattr__(self.owner, self.name)
        else:
            delattr(self.owner, self.name)

    def __repr__(self) -> str:
        state = "active" if self.active else "restored"
        return f"<Patch {self.label} {state}>"


def patch(owner: object, name: str, replacement: Any, *, raw: bool = False,
          label: str | None = None) -> Patch:
    """Replace ``owner.name`` with ``replacement`` now; ``restore()`` the result to undo."""
    return Patch(owner, name, replacement, raw=raw, label=label).apply()


@contextmanager
def patched(owner: object, name: str, replacement: Any, *, raw: bool = False,
            label: str | None = None) -> Iterator[Patch]:
    """``patch`` for a ``with`` block, restored when it ends however it ends."""
    applied = patch(owner, name, replacement, raw=raw, label=label)
    try:
        yield applied
    finally:
        applied.restore()


def _show(owner: object) -> str:
    if isinstance(owner, types.ModuleType):
        return owner.__name__
    if isinstance(owner, type):
        return owner.__qualname__
    return f"<{type(owner).__qualname__} object>"


class Interceptor(Protocol):
    """Runs an intercepted call: ``fn(*args, **kwargs)`` is the original (already bound)."""

    def run(self, label: str, fn: Callable[..., Any], args: tuple[Any, ...],
            kwargs: dict[str, Any]) -> Any:
        """Run a synchronous call."""
        ...

    async def arun(self, label: str, fn: Callable[..., Any], args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        """Run an ``async def`` call."""
        ...


def plain_wrapper(fn: Callable[..., Any], icpt: Interceptor, label: str) -> Callable[..., Any]:
    """A function that hands every call of ``fn`` to ``icpt`` (async if ``fn`` is)."""
    if inspect.iscoroutinefunction(fn):
        async def awatched(*args: Any, **kwargs: Any) -> Any:
            return await icpt.arun(label, fn, args, kwargs)

        return _wraps(fn, awatched)

    def watched(*args: Any, **kwargs: Any) -> Any:
        return icpt.run(label, fn, args, kwargs)

    return _wraps(fn, watched)


def _wraps(fn: Any, wrapper: Callable[..., Any]) -> Callable[..., Any]:
    try:
        return functools.wraps(fn)(wrapper)
    except (AttributeError, TypeError):  # a callable without the usual attributes
        return wrapper


def _method_wrapper(raw: Callable[..., Any], icpt: Interceptor, label: str,
                    only: object | None) -> Callable[..., Any]:
    """A function stored on a class: receives ``self``; intercepts calls on ``only`` (or
    on every instance when ``only`` is None)."""
    if inspect.iscoroutinefunction(raw):
        async def amethod(self: Any, *args: Any, **kwargs: Any) -> Any:
            if only is not None and self is not only:
                return await raw(self, *args, **kwargs)
            return await icpt.arun(label, functools.partial(raw, self), args, kwargs)

        return _wraps(raw, amethod)

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if only is not None and self is not only:
            return raw(self, *args, **kwargs)
        return icpt.run(label, functools.partial(raw, self), args, kwargs)

    return _wraps(raw, method)


def _class_entry(raw: Any, icpt: Interceptor, label: str, only: object | None) -> Any:
    """The replacement for the raw class entry ``raw``, of the same descriptor kind."""
    if isinstance(raw, staticmethod):
        return staticmethod(plain_wrapper(raw.__func__, icpt, label))
    if isinstance(raw, classmethod):
        func = raw.__func__

        def classwise(cls: type, *args: Any, **kwargs: Any) -> Any:
            return icpt.run(label, functools.partial(func, cls), args, kwargs)

        if inspect.iscoroutinefunction(func):
            async def aclasswise(cls: type, *args: Any, **kwargs: Any) -> Any:
                return await icpt.arun(label, functools.partial(func, cls), args, kwargs)

            return classmethod(_wraps(func, aclasswise))
        return classmethod(_wraps(func, classwise))
    if isinstance(raw, property) or not callable(raw):
        raise TypeError(f"{label} is {type(raw).__name__}, not a method. Watch a method "
                        "or function.")
    return _method_wrapper(raw, icpt, label, only)


def intercept(target: object, name: str, icpt: Interceptor, *, label: str) -> Patch:
    """Replace ``target.name`` (a module, class or instance attribute) with a wrapper that
    hands each call to ``icpt``; returns the applied ``Patch``."""
    if isinstance(target, types.ModuleType):
        stored = own_entry(target, name)
        if stored is MISSING or not callable(stored):
            raise ValueError(f"module {target.__name__} has no function {name!r}. Pass the "
                             "name of a function defined or imported there.")
        return Patch(target, name, plain_wrapper(stored, icpt, label)).apply()
    if isinstance(target, type):
        return Patch(target, name, _class_entry(_raw(target, name), icpt, label, None)).apply()
    dunder = name.startswith("__") and name.endswith("__")
    if dunder or not hasattr(target, "__dict__"):
        cls = type(target)
        return Patch(cls, name, _class_entry(_raw(cls, name), icpt, label, target)).apply()
    try:
        bound = getattr(target, name)
    except AttributeError:
        raise ValueError(f"{type(target).__qualname__} object has no method {name!r}. Pass "
                         "the name of one of its methods.") from None
    if not callable(bound):
        raise TypeError(f"{label} is {type(bound).__name__}, not a method. Watch a method "
                        "or function.")
    return Patch(target, name, plain_wrapper(bound, icpt, label)).apply()


def _raw(cls: type, name: str) -> Any:
    try:
        return inspect.getattr_static(cls, name)
    except AttributeError:
        raise ValueError(f"{cls.__qualname__} has no method {name!r}. Pass the name of one "
                         "of its methods.") from None
