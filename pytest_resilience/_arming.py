"""Who to tell when a failpoint is armed.

The pytest plugin puts its leak check here (``set_hook``) instead of running it after
every test: a session that never arms a failpoint pays nothing per test for it. The
fault registry calls ``armed()`` each time it arms a plan. Public as
``pytest_resilience.arming``.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["armed", "set_hook"]

_hook: Callable[[], None] | None = None


def set_hook(fn: Callable[[], None] | None) -> Callable[[], None] | None:
    """Call ``fn()`` whenever a failpoint is armed; returns the hook it replaces."""
    global _hook
    from pytest_resilience._validate import callable_or_none

    fn = callable_or_none(fn, "fn")
    previous, _hook = _hook, fn
    return previous


def armed() -> None:
    """A failpoint was armed: tell the hook, if any."""
    hook = _hook
    if hook is not None:
        hook()
