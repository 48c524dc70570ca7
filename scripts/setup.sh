#!/usr/bin/env bash
# Create .venv (if missing) and install pytest-resilience with every user extra and the
# repository's development extra (test peers, linters, the docs build): `.[all,dev]`.
# Idempotent; safe to run on a fresh machine. Sourced by the other scripts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  # torch is pinned to the CPU wheel (torch==2.13.0); any other version pulls a CUDA build.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[all,dev]" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import pytest_resilience, faults, torch, chromadb, pynvml, hypothesis, mkdocs"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
