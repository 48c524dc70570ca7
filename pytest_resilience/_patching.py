"""Replacing a callable attribute for the length of a block, and putting back exactly what
was stored there.

``getattr`` is not what is stored: on a class it unwraps ``staticmethod``/``classmethod``
and binds functions, on an instance it finds the class's method. So a ``Patch`` remembers
the raw entry of the owner's own namespace (or that there was none, in which case
``restore`` deletes the replacement and the inherited entry shows again).

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
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["MISSING", "Interceptor", "Patch", "intercept", "own_entry", "plain_wrapper"]

#: Marks "nothing stored under that name".
MISSING: Any = object()


def own_entry(owner: object, name: str) -> Any:
    """What ``owner``'s own namespace stores under ``name``, or ``MISSING``."""
    try:
        namespace = object.__getattribute__(owner, "__dict__")
    except AttributeError:
        return MISSING
    return namespace.get(name, MISSING)


class Patch:
    """One replacement of ``owner.name``; ``restore()`` undoes it exactly (idempotent)."""

    __slots__ = ("_saved", "active", "name", "owner", "replacement")

    def __init__(self, owner: object, name: str, replacement: Any) -> None:
        self.owner = owner
        self.name = name
        self.replacement = replacement
        self._saved = MISSING
        self.active = False

    def apply(self) -> Patch:
        """Store the replacement; a ``TypeError`` names what refused it."""
        self._saved = own_entry(self.owner, self.name)
        try:
            setattr(self.owner, self.name, self.replacement)
        except (AttributeError, TypeError) as exc:
            raise TypeError(
                f"{_show(self.owner)}.{self.name} cannot be replaced ({exc}). Watch an object "
                "whose class is written in Python, or the object that calls it."
            ) from None
        self.active = True
        return self

    def restore(self) -> None:
        """Put back exactly what was stored before, or remove the replacement."""
        if not self.active:
            return
        self.active = False
        if self._saved is MISSING:
            delattr(self.owner, self.name)
        else:
            setattr(self.owner, self.name, self._saved)

    def __repr__(self) -> str:
        state = "active" if self.active else "restored"
        return f"<Patch {_show(self.owner)}.{self.name} {state}>"


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
