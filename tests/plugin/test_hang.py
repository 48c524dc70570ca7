"""A hang is a failure, fast and explained: pytest-timeout's limit names the faults active
in the test's history and shows the blocked stack; the chaos marker's deadline fails a
hanging plan; an SLA ``max<`` budget stops the body once it is exceeded.

These tests wait for real limits (0.2-0.5 s): a hang cannot be provoked in virtual time.
"""

from __future__ import annotations

from collections import namedtuple

import pytest

from pytest_resilience._plugin.hang import pytest_timeout_set_timer

pytest.importorskip("pytest_timeout", reason="the hang tests build on pytest-timeout")

# the limit covers the test function only: a loaded machine's fixture set-up (tmp_path
# removes old base directories) must not count against a 0.2-0.5 s hang limit
FUNC_ONLY = ("-o", "timeout_func_only=true")

STALLED_FETCH = '''
import threading, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import pytest
from faults.network import FaultProxy, timeout


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args):
        pass


@pytest.mark.timeout(0.5)
def test_fetch_without_timeout(history, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    serving = threading.Thread(target=server.serve_forever)
    serving.start()
    try:
        with FaultProxy(server.server_address, name="upstream") as proxy:
            proxy.add_toxic(timeout(0), name="stall")
            urllib.request.urlopen(proxy.url).read()  # no timeout: blocks for good
            (tmp_path.parent / "after-the-hang").write_text("ran")
    finally:
        server.shutdown()
        server.server_close()
        serving.join()
'''


def test_a_hang_fails_within_its_limit_and_names_the_active_toxic(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(STALLED_FETCH)
    result = pytester.runpytest("-p", "pytest_timeout", *FUNC_ONLY)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "Timeout (>0.5s) from pytest-timeout: test_a_hang_fails_within_its_limit_and_names_the"
        "_active_toxic.py::test_fetch_without_timeout was blocked for more than its 0.5s limit.",
        "Faults active at that moment (t=*s on the test's clock):",
        "  - upstream [[]network[]] toxic 'stall': timeout(ms=0) on downstream; active since "
        "t=*s (*s before), fired 1 time(s)",
        "Stack of the blocked thread (most recent call last):",
        "  File *, line *, in test_fetch_without_timeout",
        "    urllib.request.urlopen(proxy.url).read()  # no timeout: blocks for good",
        "*self._sock.recv_into(b)",
        "Other threads:",
        "  FaultProxy-upstream: *",
    ])
    assert not list(pytester.path.parent.glob("**/after-the-hang"))


def test_a_failpoint_armed_in_the_history_is_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import threading, pytest
from faults import Action

@pytest.mark.timeout(0.2)
def test_blocked(faults):
    faults.inject("db.read", Action.delay(1.0))
    threading.Event().wait()  # a lock wait: interrupted too
''')
    result = pytester.runpytest("-p", "pytest_timeout", *FUNC_ONLY)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "Faults active at that moment (t=*s on the test's clock):",
        "  - faults [[]failpoint[]] faults=1, seed=*; active since t=0s*, fired 0 time(s)",
        "*threading.Event().wait()  # a lock wait: interrupted too",
    ])


def test_a_test_without_faults_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile('''
import threading, pytest

@pytest.mark.timeout(0.2)
def test_blocked():
    threading.Event().wait()
''')
    result = pytester.runpytest("-p", "pytest_timeout", *FUNC_ONLY)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  (none recorded in the test's history)"])


def test_the_thread_method_is_left_to_pytest_timeout() -> None:
    settings = namedtuple("Settings", "timeout method func_only disable_debugger_detection")
    assert pytest_timeout_set_timer(object(), settings(1.0, "thread", False, False)) is None  # type: ignore[arg-type]


CHAOS = '''
import threading, pytest
import faults
from faults import Action

@pytest.mark.chaos(failpoints={"db.read": [Action.raise_(ConnectionError)]}, max_examples=8,
                   {deadline})
def test_reads(chaos):
    try:
        faults.failpoint("db.read")
    except ConnectionError:
        threading.Event().wait()  # the recovery path hangs
'''


def test_a_chaos_plan_past_its_deadline_fails_with_the_plan(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CHAOS.replace("{deadline}", "deadline=0.05"))
    result = pytester.runpytest("--resilience-seed=1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*the body raised HangDetected: A chaos plan's body was blocked for more than its "
        "0.05s deadline (@pytest.mark.chaos(deadline=...), ini resilience_chaos_deadline).",
        "Faults active at that moment*",
        "*threading.Event().wait()  # the recovery path hangs",
        "minimal fault plan (1 fault(s)):",
    ])


def test_the_ini_default_deadline_and_a_bad_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CHAOS.replace("{deadline}", ""))
    pytester.makeini("[pytest]\naddopts = -p resilience -p no:cacheprovider\n"
                     "resilience_chaos_deadline = 0.05\n")
    result = pytester.runpytest("--resilience-seed=1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the body raised HangDetected: *0.05s deadline*"])
    pytester.makepyfile(CHAOS.replace("{deadline}", "deadline='soon'"))
    bad = pytester.runpytest("--resilience-seed=1")
    bad.stdout.fnmatch_lines(["*@pytest.mark.chaos(deadline=...): 'soon' is not a deadline. "
                              "Pass seconds > 0, or None for no deadline."])


def test_an_sla_max_budget_stops_the_body(pytester: pytest.Pytester) -> None:
    """Regression (issue 16): a 3 s body under max<1s ran its full 3 s before failing."""
    pytest.importorskip("numpy", reason="the SLA histogram folds samples with numpy")
    pytester.makepyfile('''
import asyncio, threading, pytest

@pytest.mark.sla("lookup: max<200ms")
def test_sync(sla, tmp_path):
    with sla.measure("lookup"):
        threading.Event().wait(3)
    (tmp_path / "sync-after").write_text("ran")

@pytest.mark.sla("lookup: max<200ms")
def test_async(sla, tmp_path):
    async def body():
        async with sla.measure("lookup"):
            await asyncio.sleep(3)
    asyncio.run(body())
    (tmp_path / "async-after").write_text("ran")

@pytest.mark.sla("other: max<200ms")
def test_other_operations_are_not_stopped(sla):
    with sla.measure("lookup"):
        threading.Event().wait(0.3)
    with sla.measure("other"):
        pass
''')
    result = pytester.runpytest()
    result.assert_outcomes(failed=2, passed=1)
    result.stdout.fnmatch_lines([
        "*BudgetExceeded: 'lookup' was stopped after 200ms: it ran past the lookup: max<200ms "
        "budget (the rest of the test body did not run).",
    ])
    assert not list(pytester.path.parent.glob("**/*-after"))


class Stop(BaseException):
    pass


def test_the_watchdog_serves_nested_limits_and_refires() -> None:
    import threading

    from pytest_resilience._watchdog import WATCHDOG

    fired: list[str] = []

    def expire(name: str) -> object:
        def expired(frame: object) -> None:
            fired.append(name)
            raise Stop(name)
        return expired

    with pytest.raises(Stop) as outer, WATCHDOG.limit(5.0, expire("outer")), \
            WATCHDOG.limit(0.05, expire("inner")):
        threading.Event().wait(5)
    assert (fired, outer.value.args) == (["inner"], ("inner",))

    def swallow_once() -> int:
        swallowed = 0
        with WATCHDOG.limit(0.05, expire("again")):
            for _ in range(2):  # the first interrupt is swallowed; the limit fires again
                try:
                    threading.Event().wait(5)
                except Stop:
                    swallowed += 1
        return swallowed

    assert swallow_once() == 2
    assert fired == ["inner", "again", "again"]


def test_the_watchdog_does_nothing_off_the_main_thread_or_with_a_foreign_timer() -> None:
    import signal
    import threading

    from pytest_resilience._watchdog import WATCHDOG

    enforced: list[bool] = []

    def worker() -> None:
        with WATCHDOG.limit(0.01, lambda frame: None) as on:
            enforced.append(on)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    previous = signal.signal(signal.SIGALRM, lambda *a: None)
    signal.setitimer(signal.ITIMER_REAL, 60)
    try:
        with WATCHDOG.limit(0.01, lambda frame: None) as on:
            enforced.append(on)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert enforced == [False, False]
