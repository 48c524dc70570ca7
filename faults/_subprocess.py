"""Subprocess faults: the command that is missing, hangs, fails, starts slowly or is killed.

For commands that match a name or a pattern, ``subprocess.Popen`` (so ``run``, ``call``,
``check_call``, ``check_output``, ``getoutput``) and the event loop's ``subprocess_exec`` /
``subprocess_shell`` (so ``asyncio.create_subprocess_exec`` / ``_shell``) behave as asked;
every other command runs for real. The patch is on the classes, so ``from subprocess
import Popen`` callers are reached too. The behaviours are real, not mocked:

- ``not_found``: the ``FileNotFoundError`` exec raises; a shell command exits 127 with the
  shell's "not found" line on stderr, as dash prints it;
- ``exits`` / ``killed``: a real child (``sys.executable``) writes the given stdout and
  stderr, then exits with the code or kills itself with the signal, so pipes,
  ``returncode``, ``CalledProcessError`` and text decoding behave as with the program;
- ``hang``: a real child that never exits. ``wait`` / ``communicate`` with a timeout raise
  the real ``TimeoutExpired`` once the fault's clock has moved by the timeout (at once
  on a ``VirtualClock``; a ``SystemClock`` waits for real), and a wait without a timeout
  raises ``HangWithoutTimeout`` instead of blocking forever. asyncio waits are real (the
  child never exits) unless the caller times out on the clock;
- ``slow_start``: the real command, started ``seconds`` later on the clock.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import errno
import inspect
import os
import random
import re
import shlex
import signal as signals
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from faults._injector import CountedInjector, TriggerCounter
from faults._plan import Trigger
from pytest_resilience import Clock, History, ResilienceError, SystemClock, emit, validate
from pytest_resilience.kinds import FAULT_ARMED, FAULT_DISARMED, FAULT_FIRED
from pytest_resilience.patching import Patch, patch

__all__ = [
    "KINDS",
    "MAX_OUTPUT",
    "Command",
    "HangWithoutTimeout",
    "SubprocessFault",
    "check_command",
    "exits",
    "hang",
    "killed",
    "not_found",
    "slow_start",
]

Command = str | re.Pattern[str]
Kind = Literal["not_found", "hang", "exit", "killed", "slow_start"]
#: The behaviours, as named in events and in the chaos family.
KINDS: tuple[str, ...] = ("not_found", "hang", "exit", "killed", "slow_start")
#: The most bytes of stdout (and of stderr) a faked command can write.
MAX_OUTPUT = 64 * 1024

_SOURCE = "subprocess"
_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)*)?$")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_SHELL_PREFIXES = frozenset({"exec", "command", "env", "nohup", "nice", "time"})
_PYTHON_OPTIONS_WITH_VALUE = frozenset({"-W", "-X", "-Q"})
# Signals whose default action does not end a process.
_NOT_FATAL = frozenset(getattr(signals, name) for name in (
    "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGWINCH")
    if hasattr(signals, name))

# The child that stands in for a faked command: writes stdout and stderr, then exits with
# a code, kills itself with a signal, or hangs until it is killed.
_CHILD = """
import base64, os, signal, sys, time
kind, number, out, err = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
for stream, data in ((sys.stdout, out), (sys.stderr, err)):
    try:
        stream.buffer.write(base64.b64decode(data))
        stream.flush()
    except (AttributeError, OSError, ValueError):
        pass
if kind == "exit":
    os._exit(number)
if kind == "killed":
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        signal.signal(number, signal.SIG_DFL)
    except (OSError, ValueError):
        pass
    os.kill(os.getpid(), number)
    os._exit(1)
for number in (signal.SIGINT, signal.SIGTERM):
    signal.signal(number, signal.SIG_DFL)
while True:
    time.sleep(3600)
"""


class HangWithoutTimeout(ResilienceError):
    """A command made to hang was waited on without a timeout: in production that wait
    would never return. ``command`` is the command's ``args``."""

    def __init__(self, message: str, *, command: Any) -> None:
        super().__init__(message, context={"command": command})
        self.command = command


@dataclass(frozen=True, slots=True)
class _Call:
    """One command as the caller spelled it."""

    commands: tuple[tuple[str, ...], ...]  # simple commands (one unless a shell line)
    line: str  # the command line as text
    shell: bool
    program: Any  # what exec reports as missing: executable= or args[0], as given
    executable: str | None


def _call_of(args: Any, executable: Any, shell: bool) -> _Call:
    exe = os.fsdecode(executable) if executable is not None else None
    if shell:
        first = args if isinstance(args, str | bytes) else next(iter(args), "")
        text = os.fsdecode(first)
        return _Call(_shell_commands(text), text, True, executable, exe)
    if isinstance(args, str | bytes | os.PathLike):
        argv: tuple[str, ...] = (os.fsdecode(args),)
        program: Any = args
    else:
        items = list(args)
        argv = tuple(os.fsdecode(a) for a in items)
        program = items[0] if items else ""
    return _Call((argv,), shlex.join(argv), False,
                 executable if executable is not None else program, exe)


def _shell_commands(text: str) -> tuple[tuple[str, ...], ...]:
    """The simple commands of a shell line (split at ``; | & ( )`` and newlines), each
    without leading assignments and ``exec``/``env``/... prefixes."""
    lexer = shlex.shlex(text.replace("\n", " ; "), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: the shell will complain; match on words
        tokens = text.split()
    commands: list[tuple[str, ...]] = []
    current: list[str] = []
    for token in tokens:
        if token and set(token) <= set(";|&()"):
            if current:
                commands.append(tuple(current))
            current = []
        elif current or not (_ASSIGNMENT.match(token) or token in _SHELL_PREFIXES):
            current.append(token)
    if current:
        commands.append(tuple(current))
    return tuple(commands)


def _same_file(a: str, b: str) -> bool:
    return os.path.isabs(a) and os.path.realpath(a) == os.path.realpath(b)


def _names(argv: Sequence[str]) -> list[str]:
    """The names a simple command answers to: its program's base name and, for a Python
    interpreter, the script it runs (with and without its suffix) or its ``-m`` module."""
    if not argv:
        return []
    program = os.path.basename(argv[0])
    names = [program]
    if not (_PYTHON_NAME.match(program) or _same_file(argv[0], sys.executable)):
        return names
    rest = iter(argv[1:])
    for token in rest:
        if token == "-m":
            module = next(rest, None)
            if module:
                names.append(module)
            break
        if token in ("-c", "-"):
            break
        if token in _PYTHON_OPTIONS_WITH_VALUE:
            next(rest, None)
        elif not token.startswith("-"):
            script = os.path.basename(token)
            names.extend((script, os.path.splitext(script)[0]))
            break
    return names


@dataclass
class _Decision:
    """What the armed faults decided for one command."""

    call: _Call
    slow: list[SubprocessFault] = field(default_factory=list)
    terminal: SubprocessFault | None = None
    matched: str = ""
    in_loop: bool = False


# Set by the event loop's patched subprocess_exec/_shell for the Popen it creates.
_DECIDED: contextvars.ContextVar[_Decision | None] = contextvars.ContextVar(
    "resilience_subprocess_decision", default=None)
_INIT_SIGNATURE = inspect.signature(subprocess.Popen.__init__)
_HANG_ATTR = "_resilience_hang"


class _Patch:
    """The one installed patch of ``Popen`` and the event loop; faults are added and
    removed under a lock, and the originals come back with the last one."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: tuple[SubprocessFault, ...] = ()
        self.patches: list[Patch] = []

    def add(self, fault: SubprocessFault) -> None:
        with self.lock:
            if not self.faults:
                self._install()
            self.faults = (*self.faults, fault)

    def remove(self, fault: SubprocessFault) -> None:
        with self.lock:
            if fault not in self.faults:
                return
            self.faults = tuple(f for f in self.faults if f is not fault)
            if not self.faults:
                self._uninstall()

    def decide(self, call: _Call, *, in_loop: bool) -> _Decision:
        """Ask each matching fault, in arming order: slow starts add up, the first other
        fault that fires decides the outcome."""
        decision = _Decision(call, in_loop=in_loop)
        for fault in self.faults:
            name = fault.matches(call)
            if name is None:
                continue
            fire, n = fault.counter.decide()
            if not fire:
                continue
            fault.record(call, n)
            if fault.kind == "slow_start":
                decision.slow.append(fault)
                continue
            decision.terminal, decision.matched = fault, name
            break
        return decision

    def _install(self) -> None:
        popen = subprocess.Popen
        loop_class = asyncio.base_events.BaseEventLoop
        init, communicate = popen.__init__, popen.communicate
        wait, send_signal = popen.wait, popen.send_signal
        loop_exec, loop_shell = loop_class.subprocess_exec, loop_class.subprocess_shell
        layer = self

        def patched_init(proc: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
            decision = _DECIDED.get()
            if decision is None:
                bound = _INIT_SIGNATURE.bind(proc, *args, **kwargs).arguments
                call = _call_of(bound["args"], bound.get("executable"),
                                bool(bound.get("shell", False)))
                decision = layer.decide(call, in_loop=False)
                for slow in decision.slow:
                    slow.clock.sleep(slow.seconds)
            if decision.terminal is None:
                init(proc, *args, **kwargs)
                return
            decision.terminal.start_child(proc, init, args, kwargs, decision)

        def patched_communicate(proc: subprocess.Popen[Any], input: Any = None,
                                timeout: float | None = None) -> Any:
            fault = getattr(proc, _HANG_ATTR, None)
            if fault is not None and proc.returncode is None:
                fault.time_out(proc, timeout)
            return communicate(proc, input, timeout)

        def patched_wait(proc: subprocess.Popen[Any], timeout: float | None = None) -> Any:
            fault = getattr(proc, _HANG_ATTR, None)
            if fault is not None and proc.returncode is None:
                fault.time_out(proc, timeout)
            return wait(proc, timeout)

        def patched_send_signal(proc: subprocess.Popen[Any], sig: int) -> None:
            if sig:
                setattr(proc, _HANG_ATTR, None)  # a signalled hang is a real child again
            send_signal(proc, sig)

        async def patched_exec(loop: Any, protocol_factory: Any, program: Any, *args: Any,
                               **kwargs: Any) -> Any:
            call = _call_of([program, *args], kwargs.get("executable"), False)
            return await layer.run_in_loop(call, loop_exec, loop, protocol_factory,
                                           program, *args, **kwargs)

        async def patched_shell(loop: Any, protocol_factory: Any, cmd: Any,
                                **kwargs: Any) -> Any:
            call = _call_of(cmd, kwargs.get("executable"), True)
            return await layer.run_in_loop(call, loop_shell, loop, protocol_factory, cmd,
                                           **kwargs)

        replacements = [
            (popen, "__init__", patched_init), (popen, "communicate", patched_communicate),
            (popen, "wait", patched_wait), (popen, "send_signal", patched_send_signal),
            (loop_class, "subprocess_exec", patched_exec),
            (loop_class, "subprocess_shell", patched_shell),
        ]
        try:
            for owner, name, replacement in replacements:
                self.patches.append(patch(owner, name, replacement))
        except BaseException:
            self._uninstall()
            raise

    async def run_in_loop(self, call: _Call, original: Any, *args: Any, **kwargs: Any) -> Any:
        """Decide in the task, wait out slow starts on the clock, then let the loop create
        the process; the ``Popen`` it builds applies the decision."""
        decision = self.decide(call, in_loop=True)
        for slow in decision.slow:
            await slow.clock.asleep(slow.seconds)
        token = _DECIDED.set(decision)
        try:
            return await original(*args, **kwargs)
        finally:
            _DECIDED.reset(token)

    def _uninstall(self) -> None:
        while self.patches:
            self.patches.pop().restore()


_PATCH = _Patch()


class SubprocessFault(CountedInjector):
    """An armed subprocess fault: a context manager (sync and async) undone on exit.

    ``calls`` counts the commands that matched, ``fired`` those it acted on and
    ``commands`` their command lines. Children it started are killed (if still running)
    and reaped when it stops.
    """

    def __init__(self, kind: Kind, command: Command, *, number: int = 0, stdout: bytes = b"",
                 stderr: bytes = b"", seconds: float = 0.0, trigger: Trigger | None,
                 seed: int, rng: random.Random | None, clock: Clock | None,
                 history: History | None, label: str) -> None:
        self.kind = kind
        self.command = check_command(command)
        self.number = number
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds
        self.clock: Clock = validate.clock(clock)
        self.history = validate.history(history)
        self.label = label
        self.counter = TriggerCounter(trigger, seed=seed, rng=rng, clock=self.clock)
        self.commands: list[str] = []
        self._children: list[tuple[subprocess.Popen[Any], bool]] = []
        self._active = False

    def matches(self, call: _Call) -> str | None:
        """The name (or command line) by which ``call`` matches, or ``None``."""
        if isinstance(self.command, re.Pattern):
            return call.line if self.command.search(call.line) else None
        for argv in call.commands:
            names = _names(argv)
            if call.executable is not None:
                names.append(os.path.basename(call.executable))
            if self.command in names:
                return self.command
        return None

    def record(self, call: _Call, n: int) -> None:
        """Record one command the fault acts on as a ``fault.fired`` event."""
        self.commands.append(call.line)
        emit(FAULT_FIRED, _SOURCE, self.clock, history=self.history, family="subprocess",
             action=self.kind, trigger=str(self.counter.trigger), call=n, command=call.line,
             fault=self.label)

    def start_child(self, proc: subprocess.Popen[Any], init: Any, args: tuple[Any, ...],
                    kwargs: dict[str, Any], decision: _Decision) -> None:
        """Start the child that stands in for the command (or raise as exec would)."""
        bound = _INIT_SIGNATURE.bind(proc, *args, **kwargs).arguments
        call = decision.call
        kind, number, stderr = self.kind, self.number, self.stderr
        if kind == "not_found":
            if not call.shell:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), call.program)
            shell = call.executable or "/bin/sh"
            name = decision.matched if decision.matched != call.line else \
                (call.commands[0][0] if call.commands else call.line)
            kind, number, stderr = "exit", 127, f"{shell}: 1: {name}: not found\n".encode()
        argv = [sys.executable, "-I", "-S", "-c", _CHILD, kind, str(number),
                base64.b64encode(self.stdout).decode(), base64.b64encode(stderr).decode()]
        rest = {k: v for k, v in bound.items() if k not in ("self", "args", "executable",
                                                            "shell")}
        init(proc, argv, **rest)
        proc.args = bound["args"]
        self._children.append((proc, decision.in_loop))
        if kind == "hang":
            setattr(proc, _HANG_ATTR, self)

    def time_out(self, proc: subprocess.Popen[Any], timeout: float | None) -> None:
        """A wait on a hanging child: the real ``TimeoutExpired`` once the clock has moved
        by ``timeout``; ``HangWithoutTimeout`` when there is none."""
        if timeout is None:
            raise HangWithoutTimeout(
                f"{proc.args!r} was made to hang by {self.label} and was waited on without a "
                "timeout: in production this wait would never return. Pass timeout= to "
                "run(), communicate() or wait(), or kill the process first.",
                command=proc.args)
        if isinstance(self.clock, SystemClock):
            return  # the real wait times out for real
        self.clock.sleep(max(0.0, timeout))
        raise subprocess.TimeoutExpired(proc.args, timeout)

    def start(self) -> SubprocessFault:
        """Arm the fault (the first armed fault installs the patch)."""
        if not self._active:
            self.counter.start()
            _PATCH.add(self)
            self._active = True
            emit(FAULT_ARMED, _SOURCE, self.clock, history=self.history,
                 family="subprocess", fault=self.label, trigger=str(self.counter.trigger))
        return self

    def stop(self) -> None:
        """Disarm; kill and reap what it started (the last fault restores the originals)."""
        if not self._active:
            return
        try:
            for proc, in_loop in self._children:
                if proc.returncode is not None:
                    continue
                if getattr(proc, _HANG_ATTR, None) is not None:
                    proc.kill()
                if not in_loop:  # the event loop's child watcher reaps its own children
                    proc.wait(timeout=30)
            self._children.clear()
        finally:
            _PATCH.remove(self)
            self._active = False
            emit(FAULT_DISARMED, _SOURCE, self.clock, history=self.history,
                 family="subprocess", fault=self.label, calls=self.calls, fired=self.fired)


def check_command(command: Command) -> Command:
    """``command`` if it is a program name or a ``re.Pattern``: ``TypeError`` for another
    type, ``ValueError`` for a blank name."""
    if isinstance(command, re.Pattern) or (isinstance(command, str) and command.strip()):
        return command
    kind = ValueError if isinstance(command, str) else TypeError
    raise kind(f"command={validate.show(command)} is not a command name or pattern. Pass a "
               "program name such as 'model-cli' or a compiled re.Pattern.")


def _output(value: str | bytes, name: str) -> bytes:
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes):
        raise TypeError(f"{name}={validate.show(value)} is not text. Pass str (written as "
                        "UTF-8) or bytes.")
    if len(value) > MAX_OUTPUT:
        raise ValueError(f"{name} is {len(value)} bytes. Pass at most {MAX_OUTPUT} bytes.")
    return value


def _show(command: Command) -> str:
    """``command`` (checked) as the fault's label shows it."""
    command = check_command(command)
    return f"re.compile({command.pattern!r})" if isinstance(command, re.Pattern) \
        else repr(command)


def not_found(command: Command, *, trigger: Trigger | None = None, seed: int = 0,
              rng: random.Random | None = None, clock: Clock | None = None,
              history: History | None = None) -> SubprocessFault:
    """Make ``command`` look not installed: exec raises the real ``FileNotFoundError``
    (``errno.ENOENT``); through a shell, it exits 127 with ``<shell>: 1: <name>: not
    found`` on stderr.

    ``command`` is a program name (a Python interpreter's script or ``-m`` module counts
    too) or a ``re.Pattern`` searched in the command line. ``trigger`` (always by
    default) decides which matching calls fail; ``rate`` draws from ``seed`` or ``rng``.
    """
    return SubprocessFault("not_found", command, trigger=trigger, seed=seed, rng=rng,
                           clock=clock, history=history, label=f"not_found({_show(command)})")


def hang(command: Command, *, trigger: Trigger | None = None, seed: int = 0,
         rng: random.Random | None = None, clock: Clock | None = None,
         history: History | None = None) -> SubprocessFault:
    """Make ``command`` never finish: a wait with a timeout raises the real
    ``subprocess.TimeoutExpired`` once ``clock`` has moved by it (instantly on a
    ``VirtualClock``), a wait without one raises ``HangWithoutTimeout``. asyncio callers
    wait for real (use a short timeout, or one on the clock)."""
    return SubprocessFault("hang", command, trigger=trigger, seed=seed, rng=rng, clock=clock,
                           history=history, label=f"hang({_show(command)})")


def exits(command: Command, code: int = 1, *, stdout: str | bytes = b"",
          stderr: str | bytes = b"", trigger: Trigger | None = None, seed: int = 0,
          rng: random.Random | None = None, clock: Clock | None = None,
          history: History | None = None) -> SubprocessFault:
    """Make ``command`` write ``stdout`` and ``stderr`` (at most ``MAX_OUTPUT`` bytes each)
    and exit with ``code`` (0-255) instead of running."""
    code = validate.count(code, "code", low=0, high=255, what="an exit status",
                          accepted="an integer from 0 to 255")
    return SubprocessFault("exit", command, number=code, stdout=_output(stdout, "stdout"),
                           stderr=_output(stderr, "stderr"), trigger=trigger, seed=seed,
                           rng=rng, clock=clock, history=history,
                           label=f"exits({_show(command)}, {code})")


def killed(command: Command, signal: int = signals.SIGKILL, *, stdout: str | bytes = b"",
           stderr: str | bytes = b"", trigger: Trigger | None = None, seed: int = 0,
           rng: random.Random | None = None, clock: Clock | None = None,
           history: History | None = None) -> SubprocessFault:
    """Make ``command`` write ``stdout`` and ``stderr``, then die of ``signal`` (its
    ``returncode`` is ``-signal``, as for a process the OOM killer ended)."""
    valid = sorted(int(s) for s in signals.valid_signals() if s not in _NOT_FATAL)
    wrong_type = isinstance(signal, bool) or not isinstance(signal, int)
    if wrong_type or signal not in valid:
        raise (TypeError if wrong_type else ValueError)(
            f"signal={validate.show(signal)} is not a signal that ends a process. Pass one of "
            "signal.SIGKILL, SIGTERM, SIGSEGV, SIGABRT, SIGINT, SIGHUP, ...")
    name = signals.Signals(signal).name
    return SubprocessFault("killed", command, number=int(signal),
                           stdout=_output(stdout, "stdout"), stderr=_output(stderr, "stderr"),
                           trigger=trigger, seed=seed, rng=rng, clock=clock, history=history,
                           label=f"killed({_show(command)}, {name})")


def slow_start(command: Command, seconds: float, *, trigger: Trigger | None = None,
               seed: int = 0, rng: random.Random | None = None, clock: Clock | None = None,
               history: History | None = None) -> SubprocessFault:
    """Start ``command`` for real, ``seconds`` later on ``clock`` (the caller's thread or
    task waits; a ``VirtualClock`` only moves)."""
    value = validate.seconds(seconds, "seconds", what="a valid delay")
    return SubprocessFault("slow_start", command, seconds=value, trigger=trigger, seed=seed,
                           rng=rng, clock=clock, history=history,
                           label=f"slow_start({_show(command)}, {value:g}s)")
