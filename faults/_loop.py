"""The event loop under every fault proxy: one selector thread, timers, control calls.

Sockets are registered once (``watch``) and stay registered while their connection
lives; ``modify`` changes what they wait for. Handlers, timers and control calls all run
holding the loop's mutex, so whichever thread holds it may do the loop's work.

On a ``VirtualClock`` the loops of every proxy on that clock form one ``_Net``, the
clock's driver (``VirtualClock.add_driver``): they share one mutex, and

- the thread that drives the clock (the test's) settles them on each of its reads,
  sleeps and steps: it runs, itself, everything their sockets hold and every timer due,
  waits until the rest of the process is asleep (``faults._quiet``), and goes on; a
  step stops at each proxy deadline inside it;
- a loop thread moves the clock only when every other thread of the process is asleep
  (the test blocked on a socket): to the earliest proxy deadline, whose timers it runs.

So what a proxy does, and when in virtual time, depends on what the test did, not on
how threads happened to be scheduled, and a chaos plan replays with the same history.
On any other clock each loop runs freely and its timers wait in real time.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import os
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from faults._quiet import Quiet
from pytest_resilience import Clock, VirtualClock

__all__ = ["READ", "WRITE", "Loop", "Timer"]

T = TypeVar("T")

READ = select.POLLIN
WRITE = select.POLLOUT
_EPS = 1e-9  # seconds: a timer this close to now is due (float rounding of clock steps)
_JOIN_TIMEOUT = 10.0
_POLL_MIN = 0.0005  # seconds between looks for quiet, when a virtual deadline waits
_POLL_MAX = 0.001
_SETTLE_LIMIT = 1.0  # real seconds a settle waits for the process to fall asleep
_SETTLE_DEGRADED = 0.01  # ... after a settle ran out of patience, until one finds quiet
_GAP = 0.0002  # real seconds a settle lets an awake thread run before it looks again


class Timer:
    """A callback at a time on the loop's clock; ``cancel()`` stops it."""

    __slots__ = ("cancelled", "fn", "seq", "when")

    def __init__(self, when: float, seq: int, fn: Callable[[], None]) -> None:
        self.when = when
        self.seq = seq
        self.fn = fn
        self.cancelled = False

    def __lt__(self, other: Timer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        """Stop the timer (a no-op once it ran)."""
        self.cancelled = True


class _Poller:
    """``select.epoll`` where the OS has it, else ``select.poll`` (same masks)."""

    def __init__(self) -> None:
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._poll = select.poll() if self._epoll is None else None
        #: Ready ``(fd, mask)`` pairs; ``timeout`` seconds, negative: forever (epoll's own
        #: method where there is epoll: no Python frame on every wake-up).
        self.poll: Callable[[float], list[tuple[int, int]]] = (
            self._epoll.poll if self._epoll is not None else self._poll_ms)

    def register(self, fd: int, mask: int) -> None:
        (self._epoll or self._poll).register(fd, mask)  # type: ignore[union-attr]

    def modify(self, fd: int, mask: int) -> None:
        (self._epoll or self._poll).modify(fd, mask)  # type: ignore[union-attr]

    def unregister(self, fd: int) -> None:
        with contextlib.suppress(OSError, KeyError, ValueError):
            (self._epoll or self._poll).unregister(fd)  # type: ignore[union-attr]

    def _poll_ms(self, timeout: float) -> list[tuple[int, int]]:
        assert self._poll is not None
        return self._poll.poll(None if timeout < 0 else math.ceil(timeout * 1000))

    def fileno(self) -> int | None:
        return self._epoll.fileno() if self._epoll is not None else None

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()


class _Wakeup:
    """An eventfd (or a pipe) that interrupts the loop's wait."""

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            self.read_fd = self.write_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # pragma: no cover - non-Linux
            self.read_fd, self.write_fd = os.pipe()
            os.set_blocking(self.read_fd, False)
            os.set_blocking(self.write_fd, False)

    def set(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self.write_fd, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    def clear(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.read_fd, 64)

    def close(self) -> None:
        os.close(self.read_fd)
        if self.write_fd != self.read_fd:
            os.close(self.write_fd)


class Loop:
    """One proxy's selector thread. Every method but ``start``/``stop``/``run`` must be
    called holding ``mutex`` (from a handler, a timer or a ``run`` call)."""

    def __init__(self, name: str, clock: Clock) -> None:
        self.name = name
        self.clock = clock
        self.net = _net_of(clock) if isinstance(clock, VirtualClock) else None
        self.mutex: threading.RLock = self.net.mutex if self.net else threading.RLock()
        self._poller = _Poller()
        self._wakeup = _Wakeup()
        self._poller.register(self._wakeup.read_fd, READ)
        self._handlers: dict[int, Callable[[int], None]] = {}
        self._timers: list[Timer] = []
        self._seq = itertools.count()
        self._gen = 0  # bumped when another thread did the loop's work
        self._thread: threading.Thread | None = None
        self.native_id: int | None = None
        self._stopping = False
        self._poll_wait = _POLL_MIN
        #: Bugs hit by handlers and timers, kept so that ``stop`` fails the test.
        self.failures: list[Exception] = []
        #: Whether the proxy has connections or timers (set by the proxy).
        self.busy: Callable[[], bool] = lambda: bool(self._handlers) or bool(self._timers)
        #: Extra work a settle does on a ``VirtualClock`` (a proxy probing its upstream).
        self.on_settle: Callable[[], bool] | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the loop's thread (and join the clock's net on a ``VirtualClock``)."""
        if self.net is not None:
            self.net.add(self)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(ready,),
                                        name=f"FaultProxy-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(_JOIN_TIMEOUT)

    def stop(self) -> None:
        """Stop and join the thread; close the poller. Sockets are the caller's."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wakeup.set()
        thread.join(_JOIN_TIMEOUT)
        self._thread = None
        if self.net is not None:
            self.net.remove(self)
        if thread.is_alive():  # keep its descriptors: closing them under it is worse
            self.failures.append(RuntimeError(f"the loop of {self.name!r} did not stop"))
            return
        self._poller.close()
        self._wakeup.close()

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` holding the mutex, on this thread; wake the loop after.

        On the thread that drives a ``VirtualClock``, the clock is read first: the proxies
        settle and due chaos faults apply before, never inside, the call.
        """
        net = self.net
        if net is None or threading.current_thread() is self._thread:
            with self.mutex:
                self._gen += 1
                return fn(*args)
        self.clock.monotonic()
        with net.hold():
            self._gen += 1
            result = fn(*args)
        if self._thread is not None:
            self._wakeup.set()
        return result

    # -- registrations and timers (mutex held) -----------------------------------------
    def watch(self, fd: int, handler: Callable[[int], None], mask: int) -> None:
        """Call ``handler(events)`` when ``fd`` is ready for ``mask``."""
        self._handlers[fd] = handler
        self._poller.register(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        """Change what ``fd`` waits for (0: nothing, but stay registered)."""
        self._poller.modify(fd, mask)

    def unwatch(self, fd: int) -> None:
        """Forget ``fd`` (before closing it)."""
        if self._handlers.pop(fd, None) is not None:
            self._poller.unregister(fd)

    def now(self) -> float:
        """The clock's monotonic time."""
        return self.clock.monotonic()

    def call_at(self, when: float, fn: Callable[[], None]) -> Timer:
        """Run ``fn`` once the clock reaches ``when``."""
        timer = Timer(when, next(self._seq), fn)
        heapq.heappush(self._timers, timer)
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._wakeup.set()  # the loop recomputes how long it may wait
        return timer

    def next_deadline(self) -> float:
        """When the earliest live timer is due (``math.inf``: none)."""
        timers = self._timers
        while timers and timers[0].cancelled:
            heapq.heappop(timers)
        return timers[0].when if timers else math.inf

    # -- doing the work (mutex held) ----------------------------------------------------
    def step(self, events: list[tuple[int, int]] | None = None) -> bool:
        """Handle ``events`` (or whatever is ready now) and the timers due; whether
        anything was done."""
        if events is None:
            events = self._poller.poll(0)
        did = False
        handlers = self._handlers  # (the wake-up fd has none: _main drains it)
        for fd, mask in events:
            if (handler := handlers.get(fd)) is not None:
                try:
                    handler(mask)
                except Exception as exc:  # a bug: kept for stop() to raise
                    self.failures.append(exc)
                did = True
        if self._timers:
            did = self.run_due() or did
        return did

    def run_due(self) -> bool:
        """Run every timer due now, in deadline order; whether any ran."""
        timers = self._timers
        ran = False
        while timers:
            timer = timers[0]
            if timer.cancelled:
                heapq.heappop(timers)
                continue
            if timer.when > self.now() + _EPS:
                break
            heapq.heappop(timers)
            try:
                timer.fn()
            except Exception as exc:  # a bug: kept for stop() to raise
                self.failures.append(exc)
            ran = True
        return ran

    def _main(self, ready: threading.Event) -> None:
        self.native_id = threading.get_native_id()
        ready.set()
        poll, mutex, net = self._poller.poll, self.mutex, self.net
        with mutex:
            gen, timeout = self._gen, self._timeout()
        wakeup = self._wakeup.read_fd
        while True:
            events = poll(timeout)
            with mutex:
                for fd, _ in events:
                    if fd == wakeup:  # drained here, before the checks, and only here:
                        self._wakeup.clear()  # a wake-up sent later is never lost
                        break
                if self._stopping:  # set by stop(), from another thread
                    break
                if self._gen != gen:  # another thread worked meanwhile: events may be stale
                    events = poll(0)
                did = self.step(events)
                if net is None:  # (no timer: wait for the sockets alone)
                    gen, timeout = self._gen, self._timeout() if self._timers else -1.0
                    continue
                if did:
                    self._poll_wait = _POLL_MIN
                    net.quiet.activity()
                elif net.jump(self):
                    self._poll_wait = _POLL_MIN
                else:
                    self._poll_wait = min(self._poll_wait * 2, _POLL_MAX)
                gen, timeout = self._gen, self._timeout()

    def _timeout(self) -> float:
        """How long the thread may wait for its sockets (mutex held)."""
        if self.net is not None:  # virtual time moves only when the process sleeps
            return self._poll_wait if self.net.next_deadline() < math.inf else -1.0
        if not self._timers:
            return -1.0
        deadline = self.next_deadline()
        return -1.0 if deadline == math.inf else max(0.0, deadline - self.now())


class _Net:
    """The loops of every proxy on one ``VirtualClock``: the clock's driver."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.mutex = threading.RLock()
        self.loops: list[Loop] = []
        self.quiet = Quiet()
        self._holder: int | None = None
        self._patience = _SETTLE_LIMIT
        self._remove: Callable[[], None] | None = None
        self._wanting = 0
        self._wanting_lock = threading.Lock()

    def add(self, loop: Loop) -> None:
        with self.mutex:
            self.loops.append(loop)
            if self._remove is None:
                self._remove = self.clock.add_driver(self)

    def remove(self, loop: Loop) -> None:
        with self.mutex:
            self.loops.remove(loop)
            if not self.loops and self._remove is not None:
                self._remove()
                self._remove = None

    def next_deadline(self) -> float:
        """The earliest deadline of any loop on the clock."""
        return min((loop.next_deadline() for loop in self.loops), default=math.inf)

    def _others(self) -> set[int]:
        ids = {loop.native_id for loop in self.loops if loop.native_id is not None}
        return ids | {threading.get_native_id()}

    def settle(self) -> bool:
        """On the driving thread: do every loop's ready work and due timers, until the
        process sleeps (at most ``_SETTLE_LIMIT`` real seconds)."""
        if self._holder == threading.get_ident():
            return False  # inside a handler or a control call: it finishes first
        with self.hold():
            return self._settle()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the mutex to act now. Meanwhile no loop thread jumps the clock (a thread
        blocked on the mutex looks asleep, but it is about to act), and clock reads
        inside do not settle again."""
        with self._wanting_lock:
            self._wanting += 1
        try:
            with self.mutex:
                outer, self._holder = self._holder, threading.get_ident()
                try:
                    yield
                finally:
                    self._holder = outer
        finally:
            with self._wanting_lock:
                self._wanting -= 1

    def _settle(self) -> bool:
        did = False
        give_up = time.monotonic() + self._patience
        others = self._others()
        while True:
            first = self.quiet.look(others)
            worked = False
            for loop in list(self.loops):
                loop._gen += 1
                worked = loop.step() or worked
                if loop.on_settle is not None:
                    worked = loop.on_settle() or worked
            if worked:
                did = True
                self.quiet.activity()
                continue
            if not any(loop.busy() for loop in self.loops):
                return did  # no connection: nothing another thread does can reach us
            if first is not None and self.quiet.confirm(others, first):
                self._patience = _SETTLE_LIMIT
                return did
            if time.monotonic() >= give_up:
                self._patience = _SETTLE_DEGRADED
                return did
            if first is None:
                time.sleep(_GAP)  # someone is awake: let it run

    def jump(self, caller: Loop) -> bool:
        """On a loop thread, with nothing ready: if the whole process sleeps, move the
        clock to the earliest deadline and run what is due; whether it did.

        The clock's alarm (a chaos run's scheduled faults) that falls before it rings on
        time, on this thread (``VirtualClock.standing_in``): the run's thread sleeps.
        """
        deadline = self.next_deadline()
        if deadline == math.inf:
            return False
        alarm = self.clock.alarm_at
        deadline = min(deadline, alarm if alarm > self.clock.monotonic() else math.inf)
        threads = self._others()
        first = self.quiet.look(threads)
        if first is None:
            return False
        worked = False
        for loop in self.loops:  # what arrived before the look is handled first
            loop._gen += loop is not caller
            worked = loop.step() or worked
        if worked:
            return True
        if not self.quiet.confirm(threads, first) or self._wanting:
            return False
        now = self.clock.monotonic()
        self.clock.standing_in = True  # the alarm (a chaos run's schedule) may ring here
        try:
            if deadline > now:
                self.clock.advance(deadline - now)
        finally:
            self.clock.standing_in = False
        for loop in list(self.loops):
            loop.run_due()
        return True


_NETS: weakref.WeakKeyDictionary[VirtualClock, _Net] = weakref.WeakKeyDictionary()
_NETS_LOCK = threading.Lock()


def _net_of(clock: VirtualClock) -> _Net:
    with _NETS_LOCK:
        net = _NETS.get(clock)
        if net is None:
            net = _NETS[clock] = _Net(clock)
        return net
