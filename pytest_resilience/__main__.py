"""``python -m pytest_resilience <command>``: ``status`` or ``migrate``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pytest_resilience import _status as status
from pytest_resilience.migrations._cli import main as migrate_main

COMMANDS = {"status": status.main, "migrate": migrate_main}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a command; usage errors exit with status 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        sys.stderr.write(
            f"usage: python -m pytest_resilience {{{','.join(COMMANDS)}}} [options]\n"
        )
        return 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
