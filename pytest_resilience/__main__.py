"""``python -m pytest_resilience COMMAND``: the ``pytest-resilience`` command."""

from __future__ import annotations

import sys

from pytest_resilience._cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m pytest_resilience"))
