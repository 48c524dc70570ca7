"""Who to tell when a fault is armed: the hook a fault registry calls.

``faults`` calls ``armed()`` each time it arms a plan; the pytest plugin sets the hook
(``set_hook``) to start its per-test leak check, so a session that never arms a fault
pays nothing per test for it. A fault library of your own can call ``armed()`` too.
"""

from __future__ import annotations

from pytest_resilience._arming import armed, set_hook

__all__ = ["armed", "set_hook"]
