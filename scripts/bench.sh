#!/usr/bin/env bash
# Set up (if needed), run every benchmark (components beside their peers, harness cost,
# virtual-time speed-up, proxy, histogram, Chroma) and write docs/benchmarks.md: one
# table (measure, ours, best peer, ratio, goal, verdict) with the machine and its load,
# then every group. The raw figures go to reports/benchmarks/ (or the directory given as
# $1): benchmarks.json (pytest-benchmark), benchmarks.md (the same page) and
# report.{json,md,html}. Extra arguments go to pytest (e.g. -k breaker).
# About 10 minutes on an idle 2-core machine; exits non-zero if a benchmark failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
out=${1:-reports/benchmarks}
mkdir -p "$out"
model=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1 || true)
python_version=$(.venv/bin/python -c 'import platform; print(platform.python_version())')
machine="$(nproc) cores (${model:-unknown CPU}), Python $python_version, $(date -u +%Y-%m-%d)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
status=0
# 15 harness rounds (the plugin costs milliseconds in a run of about a second: the
# rounds' spread needs them; each round is two runs per environment, most of the time
# spent here) and a shorter time per calibrated benchmark (every group still times ours
# and its peers in the same run). The slowest benchmarks are listed at the end.
RESILIENCE_BENCH_HARNESS_ROUNDS=${RESILIENCE_BENCH_HARNESS_ROUNDS:-15} \
  .venv/bin/python -m pytest benchmarks --benchmark-only -p no:randomly -o addopts="" \
  -p resilience --benchmark-json="$out/benchmarks.json" --resilience-report="$out" \
  --benchmark-max-time=0.5 --benchmark-columns=min,median,mean,rounds --durations=15 \
  "${@:2}" || status=$?
load="$load_before at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end, $(($(date +%s) - started)) s in all"
if [ -f "$out/benchmarks.json" ]; then
  .venv/bin/python scripts/bench_report.py "$out/benchmarks.json" "$machine" "$load" \
    >"$out/benchmarks.md"
  cp "$out/benchmarks.md" docs/benchmarks.md
  sed -n '1,/^## Every benchmark/p' docs/benchmarks.md
fi
echo "benchmark page: docs/benchmarks.md; raw figures: $out/"
exit "$status"
