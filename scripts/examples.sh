#!/usr/bin/env bash
# Set up (if needed), then run the example suites under `pytest -p resilience`,
# writing the report into reports/examples (or the directory given as $1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
out=${1:-reports/examples}
.venv/bin/python -m pytest -p resilience example_suites --resilience-report="$out" \
  -p no:randomly -o addopts="" -o testpaths="" "${@:2}"
echo "report: $out/"
ls "$out"
