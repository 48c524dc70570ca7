"""Subprocess faults: the CLI that is missing, hangs, fails, starts slowly or is killed.

For commands matching a name or a ``re.Pattern``, ``subprocess.run/Popen/call/
check_output`` and ``asyncio.create_subprocess_exec/shell`` behave as asked; every other
command runs for real. ``not_found`` raises the real ``FileNotFoundError``; ``exits`` and
``killed`` run a real stand-in child that writes the given stdout/stderr and exits with
the code or dies of the signal; ``hang`` raises the real ``TimeoutExpired`` once the
fault's clock has moved by the caller's timeout (``HangWithoutTimeout`` when there is
none); ``slow_start`` starts the real command later. Each is a context manager, undone
on exit, with triggers and seeded rates like every other fault.
"""

from __future__ import annotations

from faults._subprocess import (
    KINDS,
    MAX_OUTPUT,
    Command,
    HangWithoutTimeout,
    SubprocessFault,
    exits,
    hang,
    killed,
    not_found,
    slow_start,
)

__all__ = [
    "KINDS",
    "MAX_OUTPUT",
    "Command",
    "HangWithoutTimeout",
    "SubprocessFault",
    "exits",
    "hang",
    "killed",
    "not_found",
    "slow_start",
]
