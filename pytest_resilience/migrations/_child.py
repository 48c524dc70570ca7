"""``python -m pytest_resilience.migrations._child SPEC``: upgrade a database and SIGKILL
this process before crash point ``kill_at`` (the crash explorer's real-crash sample).

Exits with ``CHILD_MISSED`` (3) when the upgrade ends before that point.
"""

from __future__ import annotations

import json
import sys

from pytest_resilience.migrations._backends import backend_from_spec
from pytest_resilience.migrations._crash import CHILD_MISSED, _Crasher
from pytest_resilience.migrations._sources import source_from_spec


def main(argv: list[str]) -> int:
    """Run the upgrade described by the JSON in ``argv[0]``; normally never returns."""
    spec = json.loads(argv[0])
    crasher = _Crasher(int(spec["kill_at"]), kill=True)
    source_from_spec(spec["source"]).upgrade(backend_from_spec(spec["backend"]), spec["db"],
                                             spec["to"], crasher)
    return CHILD_MISSED


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
