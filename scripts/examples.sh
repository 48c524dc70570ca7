#!/usr/bin/env bash
# Set up (if needed), then run the example suites under `pytest -p resilience`, writing
# the report into reports/examples (or the directory given as $1; further arguments go to
# pytest). Prints where the report is either way; exits with pytest's status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
out=${1:-reports/examples}
status=0
.venv/bin/python -m pytest -p resilience example_suites --resilience-report="$out" \
  -p no:randomly -o addopts="" -o testpaths="" "${@:2}" || status=$?
if [ -f "$out/report.html" ]; then
  echo "report: $out/report.html (also report.json, report.md)"
else
  echo "no report was written into $out/" >&2
fi
if [ "$status" -ne 0 ]; then
  echo "example suites FAILED (pytest exit status $status)" >&2
fi
exit "$status"
