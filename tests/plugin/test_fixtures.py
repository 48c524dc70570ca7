"""The core fixtures, the faults marker, teardown undoing faults, and the summary."""

from __future__ import annotations

import re

import pytest


def test_clock_fixture_is_a_fresh_virtual_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_resilience import VirtualClock

        def test_one(clock):
            assert isinstance(clock, VirtualClock)
            clock.sleep(3600)
            assert clock.monotonic() == 3600

        def test_two(clock):
            assert clock.monotonic() == 0
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_history_fixture_collects_the_tests_events(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_resilience import emit, active_history

        def test_events(history, clock):
            assert active_history() is history
            emit("retry.attempt", "svc", clock, attempt=1, outcome="ok", error=None, elapsed=0.0)
            assert history.kinds() == ["retry.attempt"]

        def test_after():
            assert active_history() is None
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_test_seeds_differ_per_test_and_depend_only_on_session_seed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_a(resilience_seed):
            print("SEED a", resilience_seed)

        def test_b(resilience_seed):
            print("SEED b", resilience_seed)
        """
    )
    full = pytester.runpytest("-s", "--resilience-seed=10")
    alone = pytester.runpytest("-s", "--resilience-seed=10", "-k", "test_b")
    seeds = dict(re.findall(r"SEED (\w) (\d+)", full.stdout.str()))
    assert seeds["a"] != seeds["b"]
    assert dict(re.findall(r"SEED (\w) (\d+)", alone.stdout.str())) == {"b": seeds["b"]}


def test_faults_marker_arms_faults_for_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import faults
        from faults import Action, Fault, Trigger

        def fetch():
            faults.failpoint("db.fetch")
            return "row"

        @pytest.mark.faults(Fault("db.fetch", Action.raise_(ConnectionError), Trigger.nth(2)))
        def test_marked():
            assert fetch() == "row"
            with pytest.raises(ConnectionError):
                fetch()
            assert fetch() == "row"

        def test_unmarked_sees_nothing():
            assert faults.armed_failpoints() == []
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_faults_marker_reads_a_plan_file(pytester: pytest.Pytester) -> None:
    from faults import Action, Fault, FaultPlan

    plan = FaultPlan([Fault("svc.call", Action.returns("canned"))])
    pytester.makefile(".json", plan=plan.to_json())
    pytester.makepyfile(
        """
        import pytest
        import faults

        @pytest.mark.faults("plan.json")
        def test_from_file():
            assert faults.failpoint("svc.call") == "canned"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_faults_marker_rejects_unknown_arguments(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.faults(42)
        def test_bad_arg():
            pass

        @pytest.mark.faults(sead=1)
        def test_bad_kwarg():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    out = result.stdout.lines
    assert ("@pytest.mark.faults got 42. Pass Fault objects, FaultPlans, lists of Faults or "
            "paths to plan JSON files.") in out
    assert "@pytest.mark.faults got unknown keyword(s) ['sead']. Accepted: ['seed']." in out


def test_faults_marker_with_a_failpoint_name_says_what_a_string_means(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.faults("db.read")
        def test_failpoint_name(faults):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    assert ("@pytest.mark.faults('db.read'): a string must be the path of a fault plan JSON "
            "file, and 'db.read' cannot be read (No such file or directory). To arm a "
            "failpoint, pass a Fault: @pytest.mark.faults(Fault('db.read', "
            "Action.raise_())).") in result.stdout.lines
    assert "FileNotFoundError" not in result.stdout.str()


def test_fake_gpu_marker_lists_the_keywords_it_takes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fake_gpu(device=2)
        def test_gpu(fake_gpu):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    assert ("@pytest.mark.fake_gpu got device=2. It takes keywords only: devices, total, used, "
            "name (e.g. fake_gpu(devices=2, total='24GiB')).") in result.stdout.lines


def test_markers_are_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.sla
        @pytest.mark.chaos
        def test_marked():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers", "-p", "no:randomly")
    assert "not found in `markers`" not in result.stdout.str()
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.sla(*", "@pytest.mark.faults(*",
                                  "@pytest.mark.chaos(*"])


def test_faults_are_undone_after_a_failing_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import faults

        def test_fails_with_faults_armed(faults):
            faults.inject("db.write")
            faults.inject("db.read")
            assert False, "the test fails while faults are armed"

        def test_next_test_is_clean():
            import faults as f
            assert f.armed_failpoints() == []
            assert f.failpoint("db.write") is None
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)


def test_fault_leaked_outside_the_fixture_fails_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import faults

        def test_leaks():
            faults.inject("db.write").start()

        def test_next_test_is_clean():
            assert faults.armed_failpoints() == []
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    assert ("failpoints ['db.write'] were still armed after the test; they have been "
            "disarmed.") in result.stdout.str()


def test_faults_fixture_uses_the_tests_virtual_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import faults as f
        from faults import Action

        def test_delay(faults, clock, history):
            faults.inject("slow.call", Action.delay(30))
            f.failpoint("slow.call")
            assert clock.monotonic() == 30
            assert "fault.fired" in history.kinds()
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_summary_is_silent_when_the_plugin_did_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "- resilience -" not in result.stdout.str()


def test_summary_reports_what_the_harness_did(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import faults as f

        def test_a(faults):
            faults.inject("x")
            try:
                f.failpoint("x")
            except Exception:
                pass
        """
    )
    result = pytester.runpytest("--resilience-seed=8")
    result.stdout.fnmatch_lines([
        "*- resilience -*",
        "seed: 8 (option; replay: --resilience-seed=8)",
        "tests using the harness: 1, faults fired: 1 (failpoint 1), events recorded: 3",
    ])


def test_user_module_shadowing_faults_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(faults="X = 1\n")
    pytester.makepyfile("def test_x():\n    pass\n")
    pytester.syspathinsert()
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*'faults' was imported from *faults.py, which shadows pytest-resilience's faults "
        "package. Rename that module or run pytest with --import-mode=importlib.*"
    ])


def test_works_with_pytest_asyncio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.mark.asyncio
        async def test_async_sleepers(clock):
            order = []

            async def sleeper(n):
                await clock.asleep(n)
                order.append(n)

            await asyncio.gather(sleeper(3), sleeper(1), sleeper(2))
            assert order == [1, 2, 3]
            assert clock.monotonic() == 3
        """
    )
    pytester.runpytest(
        "-p", "asyncio", "-o", "asyncio_default_fixture_loop_scope=function"
    ).assert_outcomes(passed=1)
