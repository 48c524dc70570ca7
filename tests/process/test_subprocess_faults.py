"""Subprocess faults with real commands (``sh``, ``python -c``), sync and async.

Hangs pass on a ``VirtualClock`` for ``subprocess``'s own timeouts; asyncio's
``wait_for`` waits for real, so the async hang tests use a 50 ms real timeout.
"""

from __future__ import annotations

import asyncio
import errno
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import faults.subprocess as fsp
from faults import Trigger
from pytest_resilience import VirtualClock, recording

PY = sys.executable
MODES = ("sync", "async")
ASYNC_HANG_WAIT = 0.05  # real seconds an asyncio caller waits on a hanging child


def execute(cmd: list[str] | str, mode: str, *, timeout: float | None = None,
            stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    """Run ``cmd`` (a shell line when a string) the ``mode`` way: (returncode, out, err)."""
    shell = isinstance(cmd, str)
    if mode == "sync":
        done = subprocess.run(cmd, shell=shell, capture_output=True, timeout=timeout,
                              input=stdin, check=False)
        return done.returncode, done.stdout, done.stderr

    async def main() -> tuple[int, bytes, bytes]:
        pipes: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE,
                                 "stdin": subprocess.PIPE}
        if shell:
            assert isinstance(cmd, str)
            proc = await asyncio.create_subprocess_shell(cmd, **pipes)
        else:
            proc = await asyncio.create_subprocess_exec(*cmd, **pipes)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return proc.returncode, out, err

    return asyncio.run(main())


def real_missing(mode: str) -> BaseException:
    """The error a program that is really not installed gives."""
    with pytest.raises(FileNotFoundError) as caught:
        execute(["model-cli-that-is-not-installed", "load"], mode)
    return caught.value


# -- not found -----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_not_found_raises_the_real_file_not_found_error(mode: str) -> None:
    real = real_missing(mode)
    with fsp.not_found("model-cli-that-is-not-installed") as fault, \
            pytest.raises(FileNotFoundError) as caught:
        execute(["model-cli-that-is-not-installed", "load"], mode)
    with fsp.not_found("sh"), pytest.raises(FileNotFoundError) as injected:
        execute(["sh", "-c", "echo present"], mode)
    assert (caught.value.errno, str(caught.value)) == (real.errno, str(real))
    assert (injected.value.errno, injected.value.filename) == (errno.ENOENT, "sh")
    assert str(injected.value) == "[Errno 2] No such file or directory: 'sh'"
    assert (fault.calls, fault.fired) == (1, 1)


@pytest.mark.parametrize("mode", MODES)
def test_not_found_through_a_shell_exits_127_like_the_shell(mode: str) -> None:
    real = execute("model-cli-that-is-not-installed load", mode)
    with fsp.not_found("model-cli"):
        injected = execute("true && model-cli load sentiment | cat", mode)
        other = execute("echo still-here", mode)
    assert real[0] == 127
    assert real[2] == b"/bin/sh: 1: model-cli-that-is-not-installed: not found\n"
    assert injected == (127, b"", b"/bin/sh: 1: model-cli: not found\n")
    assert other == (0, b"still-here\n", b"")


@pytest.mark.parametrize("mode", MODES)
def test_unmatched_commands_run_for_real(mode: str) -> None:
    with fsp.not_found("model-cli") as fault, fsp.exits("python-nope", 3):
        assert execute(["sh", "-c", "echo real; echo err >&2"], mode) == (0, b"real\n",
                                                                         b"err\n")
        assert execute([PY, "-c", "print(6 * 7)"], mode)[:2] == (0, b"42\n")
        assert execute(["sh", "-c", "exit 0"], mode)[0] == 0
    assert (fault.calls, fault.fired) == (0, 0)


# -- exit codes, output, signals -------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_exits_writes_the_given_output_and_exits_with_the_code(mode: str) -> None:
    with fsp.exits("model-cli", 3, stdout="loaded? no\n",
                   stderr=b"error: CUDA out of memory\n") as fault:
        done = execute(["model-cli", "load", "sentiment"], mode, stdin=b"ignored")
    assert done == (3, b"loaded? no\n", b"error: CUDA out of memory\n")
    assert fault.commands == ["model-cli load sentiment"]


def test_exits_surfaces_as_called_process_error_and_in_text_mode() -> None:
    with fsp.exits("model-cli", 2, stdout="partial", stderr="bad flag\n"):
        with pytest.raises(subprocess.CalledProcessError) as caught:
            subprocess.check_output(["model-cli", "load"], stderr=subprocess.PIPE)
        done = subprocess.run(["model-cli"], capture_output=True, text=True, check=False)
        assert subprocess.call(["model-cli"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) == 2
    assert (caught.value.returncode, caught.value.output) == (2, b"partial")
    assert caught.value.cmd == ["model-cli", "load"]
    assert (done.returncode, done.stdout, done.stderr) == (2, "partial", "bad flag\n")


@settings(max_examples=12, deadline=None)
@given(code=st.integers(0, 255), out=st.binary(max_size=300), err=st.binary(max_size=300),
       mode=st.sampled_from(MODES))
def test_exits_round_trips_any_code_and_bytes(code: int, out: bytes, err: bytes,
                                              mode: str) -> None:
    with fsp.exits("model-cli", code, stdout=out, stderr=err):
        assert execute(["model-cli"], mode) == (code, out, err)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
def test_killed_dies_of_the_signal(mode: str, signum: int) -> None:
    with fsp.killed("model-cli", signum, stdout="half", stderr="oom\n"):
        done = execute(["model-cli", "load"], mode)
    assert done == (-signum, b"half", b"oom\n")


# -- hangs ---------------------------------------------------------------------------------

def test_a_hang_times_out_on_the_virtual_clock_with_the_real_timeout_expired() -> None:
    clock = VirtualClock()
    with fsp.hang("model-cli", clock=clock):
        with pytest.raises(subprocess.TimeoutExpired) as ran:
            subprocess.run(["model-cli", "load"], capture_output=True, timeout=30, check=False)
        with pytest.raises(subprocess.TimeoutExpired) as called:
            subprocess.call(["model-cli"], timeout=5)
        with pytest.raises(subprocess.TimeoutExpired):
            subprocess.check_output(["model-cli"], timeout=2.5)
        proc = subprocess.Popen(["model-cli", "x"], stdout=subprocess.PIPE)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        assert proc.poll() is None                         # the child is really running
        proc.kill()
        assert proc.wait() == -signal.SIGKILL
        proc.stdout.close()  # type: ignore[union-attr]
    assert str(ran.value) == "Command '['model-cli', 'load']' timed out after 30 seconds"
    assert called.value.timeout == 5
    assert clock.monotonic() == 47.5                       # 30 + 5 + 2.5 + 10, no real wait


def test_a_hang_waited_on_without_a_timeout_says_it_would_never_return() -> None:
    with fsp.hang("model-cli"), pytest.raises(fsp.HangWithoutTimeout) as caught:
        subprocess.run(["model-cli", "load"], check=False)
    assert str(caught.value) == (
        "['model-cli', 'load'] was made to hang by hang('model-cli') and was waited on "
        "without a timeout: in production this wait would never return. Pass timeout= to "
        "run(), communicate() or wait(), or kill the process first.")
    assert caught.value.command == ["model-cli", "load"]


def test_a_hang_on_the_system_clock_waits_for_real() -> None:
    with fsp.hang("model-cli"), pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(["model-cli"], timeout=ASYNC_HANG_WAIT, check=False)


def test_async_hang_blocks_until_the_callers_real_timeout() -> None:
    with fsp.hang("model-cli"), pytest.raises(TimeoutError):
        execute(["model-cli", "load"], "async", timeout=ASYNC_HANG_WAIT)


def test_async_hang_times_out_on_the_clock_when_the_caller_waits_on_it() -> None:
    clock = VirtualClock()

    async def load_with_deadline() -> str:
        proc = await asyncio.create_subprocess_exec("model-cli", "load")
        waiting = asyncio.ensure_future(proc.wait())
        deadline = asyncio.ensure_future(clock.asleep(120))
        done, _ = await asyncio.wait({waiting, deadline},
                                     return_when=asyncio.FIRST_COMPLETED)
        if waiting in done:
            return "exited"
        proc.kill()
        await waiting
        return f"timed out, returncode {proc.returncode}"

    with fsp.hang("model-cli", clock=clock):
        assert asyncio.run(load_with_deadline()) == "timed out, returncode -9"
    assert clock.monotonic() == 120


def test_stopping_a_hang_kills_the_children_the_caller_left() -> None:
    with fsp.hang("model-cli"):
        proc = subprocess.Popen(["model-cli", "serve"])
    assert proc.returncode == -signal.SIGKILL


# -- slow start -----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_slow_start_runs_the_real_command_later_on_the_clock(mode: str) -> None:
    clock = VirtualClock()
    with fsp.slow_start("sh", 7.5, clock=clock):
        done = execute(["sh", "-c", "echo started"], mode)
    assert done == (0, b"started\n", b"")
    assert clock.monotonic() == 7.5


def test_slow_start_carries_on_to_the_next_fault() -> None:
    clock = VirtualClock()
    with fsp.slow_start("model-cli", 2.0, clock=clock), fsp.exits("model-cli", 9):
        assert execute(["model-cli"], "sync")[0] == 9
    assert clock.monotonic() == 2.0


# -- matching --------------------------------------------------------------------------------

@pytest.mark.parametrize(("command", "argv"), [
    ("model-cli", ["/usr/local/bin/model-cli", "load"]),
    ("model_cli.py", [PY, "-u", "/srv/tools/model_cli.py", "load"]),
    ("model_cli", [PY, "/srv/tools/model_cli.py", "load"]),
    ("tools.model_cli", ["python3", "-X", "dev", "-m", "tools.model_cli", "load"]),
    (re.compile(r"\bload\s+sentiment\b"), ["anything", "load", "sentiment"]),
])
def test_a_command_matches_by_program_script_module_or_pattern(
        command: fsp.Command, argv: list[str]) -> None:
    with fsp.not_found(command), pytest.raises(FileNotFoundError):
        subprocess.run(argv, check=False)


@pytest.mark.parametrize("cmd", [
    [PY, "-c", "print('model-cli')"], ["sh", "-c", "echo model-cli"], "echo model-cli",
    "model-cli2 2>/dev/null; exit 0", "MODEL=model-cli env true"])
def test_similar_commands_do_not_match(cmd: list[str] | str) -> None:
    with fsp.not_found("model-cli") as fault:
        done = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True,
                              check=False)
    assert (done.returncode, fault.calls) == (0, 0)


def test_an_executable_argument_is_matched_and_reported() -> None:
    with fsp.not_found("model-cli"), pytest.raises(FileNotFoundError) as caught:
        subprocess.run(["cli-alias", "load"], executable="/opt/bin/model-cli", check=False)
    assert caught.value.filename == "/opt/bin/model-cli"


# -- triggers, seeds, events, undo --------------------------------------------------------

def outcomes(fault: Callable[[], fsp.SubprocessFault], calls: int) -> list[str]:
    seen = []
    with fault():
        for _ in range(calls):
            try:
                subprocess.run(["true"], check=False)
            except FileNotFoundError:
                seen.append("missing")
            else:
                seen.append("ran")
    return seen


def test_triggers_choose_which_matching_calls_fail() -> None:
    assert outcomes(lambda: fsp.not_found("true", trigger=Trigger.first(2)), 4) == [
        "missing", "missing", "ran", "ran"]
    assert outcomes(lambda: fsp.not_found("true", trigger=Trigger.nth(3)), 4) == [
        "ran", "ran", "missing", "ran"]


def test_a_seeded_rate_replays_the_same_failures() -> None:
    first = outcomes(lambda: fsp.not_found("true", trigger=Trigger.rate(0.5), seed=7), 16)
    again = outcomes(lambda: fsp.not_found("true", trigger=Trigger.rate(0.5), seed=7), 16)
    other = outcomes(lambda: fsp.not_found("true", trigger=Trigger.rate(0.5), seed=8), 16)
    assert first == again
    assert first != other
    assert 0 < first.count("missing") < 16


def test_after_fires_once_clock_time_has_passed() -> None:
    clock = VirtualClock()
    seen = []
    with fsp.not_found("true", trigger=Trigger.after(5.0), clock=clock):
        for _ in range(2):
            try:
                subprocess.run(["true"], check=False)
                seen.append("ran")
            except FileNotFoundError:
                seen.append("missing")
            clock.advance(5.0)
    assert seen == ["ran", "missing"]


def test_events_on_the_clock_and_the_originals_come_back() -> None:
    clock = VirtualClock(start=100.0)
    originals = (subprocess.Popen.__init__, subprocess.Popen.wait,
                 asyncio.base_events.BaseEventLoop.subprocess_exec)
    with recording() as history, fsp.exits("model-cli", 1, clock=clock):
        execute(["model-cli", "load"], "sync")
        execute(["sh", "-c", "true"], "sync")
    events = history.select(source="subprocess")
    assert [(e.kind, e.time) for e in events] == [
        ("fault.armed", 100.0), ("fault.fired", 100.0), ("fault.disarmed", 100.0)]
    assert dict(events[1].attrs) == {
        "family": "subprocess", "action": "exit", "trigger": "always", "call": 1,
        "command": "model-cli load", "fault": "exits('model-cli', 1)"}
    assert dict(events[2].attrs) == {"family": "subprocess", "fault": "exits('model-cli', 1)",
                                     "calls": 1, "fired": 1}
    assert (subprocess.Popen.__init__, subprocess.Popen.wait,
            asyncio.base_events.BaseEventLoop.subprocess_exec) == originals


@pytest.mark.asyncio
async def test_faults_are_async_context_managers() -> None:
    async with fsp.exits("model-cli", 4) as fault:
        proc = await asyncio.create_subprocess_exec("model-cli")
        assert await proc.wait() == 4
    assert fault.fired == 1


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("build", "message"), [
    (lambda: fsp.not_found(""), "command='' is not a command name or pattern. Pass a program "
     "name such as 'model-cli' or a compiled re.Pattern."),
    (lambda: fsp.exits("cli", 256), "code=256 is not an exit status. Pass an integer from 0 "
     "to 255."),
    (lambda: fsp.killed("cli", signal.SIGCHLD), "signal=<Signals.SIGCHLD: 17> is not a signal "
     "that ends a process. Pass one of signal.SIGKILL, SIGTERM, SIGSEGV, SIGABRT, SIGINT, "
     "SIGHUP, ..."),
    (lambda: fsp.slow_start("cli", -1), "seconds=-1 is not a valid delay. Pass a finite "
     "number >= 0."),
    (lambda: fsp.exits("cli", 1, stdout=b"x" * (fsp.MAX_OUTPUT + 1)), "stdout is 65537 bytes. "
     "Pass at most 65536 bytes."),
    (lambda: fsp.exits("cli", 1, stderr=3), "stderr=3 is not text. Pass str (written as "
     "UTF-8) or bytes."),
    (lambda: fsp.hang("cli", trigger="first"), "trigger='first' is not a Trigger. Pass e.g. "
     "Trigger.first(2) or Trigger.rate(0.5)."),
])
def test_bad_arguments_are_refused_with_the_fix(build: Callable[[], Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError)) as caught:
        build()
    assert str(caught.value) == message


_CLOCK_FIX = ("Pass an object with monotonic(), time(), sleep() and asleep() (a VirtualClock "
              "or SystemClock instance), or None.")


@pytest.mark.parametrize(("build", "kind", "message"), [
    (lambda: fsp.not_found(None), TypeError, "command=None is not a command name or pattern. "
     "Pass a program name such as 'model-cli' or a compiled re.Pattern."),
    (lambda: fsp.hang("cli", clock=True), TypeError, f"clock=True is not a clock. {_CLOCK_FIX}"),
    (lambda: fsp.slow_start("cli", 10**400), ValueError, "seconds=<int of 1329 bits> is not "
     "a valid delay. Pass a finite number >= 0."),
    (lambda: fsp.slow_start("cli", "1"), TypeError, "seconds='1' is not a valid delay. Pass a "
     "finite number >= 0."),
    (lambda: fsp.exits("cli", "1"), TypeError, "code='1' is not an exit status. Pass an "
     "integer from 0 to 255."),
    (lambda: fsp.killed("cli", "KILL"), TypeError, "signal='KILL' is not a signal that ends a "
     "process. Pass one of signal.SIGKILL, SIGTERM, SIGSEGV, SIGABRT, SIGINT, SIGHUP, ..."),
    (lambda: fsp.exits("cli", rng="x"), TypeError, "rng='x' is not a random number "
     "generator. Pass a random.Random instance, or None to draw from seed."),
    (lambda: fsp.killed("cli", seed="x"), TypeError, "seed='x' is not a seed. Pass an "
     "integer, or None for a fresh random seed."),
])
def test_wrong_types_are_refused_at_the_call_naming_the_argument(
        build: Callable[[], Any], kind: type[Exception], message: str) -> None:
    """Regression (issue 14 item 11): command=None and clock=True failed later with an
    AttributeError, seconds=10**400 with an OverflowError, neither naming the argument."""
    with pytest.raises(kind) as caught:
        build()
    assert str(caught.value) == message


# -- restoring exactly -------------------------------------------------------------------------

def test_disarming_puts_back_exactly_what_popen_and_the_event_loop_stored(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (issue 14 item 9): the patch saved ``getattr`` values and put them back
    with ``setattr``, so on a class that inherits them (here the stand-ins another tool
    installed) every patched method stayed behind as an own attribute."""

    class ToolPopen(subprocess.Popen):  # type: ignore[type-arg]
        """A test double a tool installed as ``subprocess.Popen``: inherits everything."""

    class ToolLoop(asyncio.base_events.BaseEventLoop):
        """Inherits ``subprocess_exec`` / ``subprocess_shell``."""

    real_popen, real_loop = subprocess.Popen, asyncio.base_events.BaseEventLoop
    owners: tuple[type, ...] = (ToolPopen, ToolLoop, real_popen, real_loop)
    before = [dict(vars(owner)) for owner in owners]
    monkeypatch.setattr(subprocess, "Popen", ToolPopen)
    monkeypatch.setattr(asyncio.base_events, "BaseEventLoop", ToolLoop)
    with fsp.not_found("model-cli-that-is-not-installed"):
        assert {"__init__", "wait", "communicate", "send_signal"} <= set(vars(ToolPopen))
        assert {"subprocess_exec", "subprocess_shell"} <= set(vars(ToolLoop))
        with pytest.raises(FileNotFoundError):
            subprocess.run(["model-cli-that-is-not-installed"], check=False)
    assert [dict(vars(owner)) for owner in owners] == before
    assert execute([PY, "-c", "print('ok')"], "sync") == (0, b"ok\n", b"")
