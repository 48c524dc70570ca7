#!/usr/bin/env bash
# Set up (if needed), then run the project's checks and tests: ruff, mypy --strict, the
# docs build (MkDocs --strict: a broken link or anchor, a page missing from the nav or a
# failing reference generator fails it), pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/mkdocs build --quiet --strict
.venv/bin/python -m pytest -n 2 "$@"
