"""A chaos run after Hypothesis was imported anew in the same process (what pytester's
in-process runs do: modules first imported inside a run are dropped after it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import sys
    from hypothesis import given, settings, strategies as st
    from pytest_resilience.chaos._decisions import DrawnRandom

    @settings(max_examples=3, database=None)
    @given(st.data())
    def draw(data):
        assert 0.0 <= DrawnRandom(data).random() < 1.0

    draw()
    for name in [m for m in sys.modules if m == "hypothesis" or m.startswith("hypothesis.")]:
        del sys.modules[name]
    from hypothesis import given, settings, strategies as st  # a new import

    @settings(max_examples=3, database=None)
    @given(st.data())
    def draw_again(data):
        assert 0.0 <= DrawnRandom(data).random() < 1.0

    draw_again()
    print("drawn under both imports")
''')


def test_decisions_are_drawn_after_hypothesis_is_imported_anew() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "drawn under both imports"
