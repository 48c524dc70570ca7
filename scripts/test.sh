#!/usr/bin/env bash
# Set up (if needed), then run the project's checks and tests: ruff, mypy --strict, pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest -n 2 "$@"
