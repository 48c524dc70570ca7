"""What a failing run prints: each failure's message once, never chained to itself."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_a_broken_budget_is_printed_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from faults import Action

        @pytest.mark.sla("max<1ms", clock="virtual")
        def test_broken(sla, clock, faults):
            faults.inject("db.read", Action.delay(0.002))
            for _ in range(30):
                with sla.measure("write"):
                    clock.advance(0.002)
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    # pytest's own short summary repeats the message (in full under CI=true): count above it
    out = result.stdout.str().split("short test summary info")[0]
    assert out.count("1 of 1 SLA budget(s) not met") == 1
    assert out.count("max=2ms breaks max<1ms (30 samples)") == 1
    assert "During handling of the above exception" not in out
    assert "The above exception was the direct cause" not in out
