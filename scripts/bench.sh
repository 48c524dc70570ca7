#!/usr/bin/env bash
# Set up (if needed), then run every benchmark (components beside their peers, harness
# cost, virtual-time speed-up, proxy, histogram, Chroma) and write into reports/benchmarks/
# (or the directory given as $1): benchmarks.json (pytest-benchmark), ratios.md (medians
# and ratios against ours, with the machine) and report.{json,md,html}. CPU-heavy: run it
# on an otherwise idle machine. Exits non-zero if a benchmark failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
out=${1:-reports/benchmarks}
mkdir -p "$out"
model=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1 || true)
python_version=$(.venv/bin/python -c 'import platform; print(platform.python_version())')
machine="$(nproc) cores (${model:-unknown CPU}), Python $python_version, $(date -u +%Y-%m-%d)"
status=0
.venv/bin/python -m pytest benchmarks --benchmark-only -p no:randomly -o addopts="" \
  -p resilience --benchmark-json="$out/benchmarks.json" --resilience-report="$out" \
  --benchmark-columns=min,median,mean,rounds "${@:2}" || status=$?
if [ -f "$out/benchmarks.json" ]; then
  .venv/bin/python scripts/bench_report.py "$out/benchmarks.json" "$machine" >"$out/ratios.md"
  cat "$out/ratios.md"
fi
echo "benchmark reports: $out/ (benchmarks.json, ratios.md, report.md, report.html)"
exit "$status"
