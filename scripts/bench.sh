#!/usr/bin/env bash
# Set up (if needed), then run every benchmark (components beside their peers, harness
# cost, proxy, histogram, Chroma) and write reports/benchmarks/{benchmarks.json,report.*}.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
out=${1:-reports/benchmarks}
mkdir -p "$out"
.venv/bin/python -m pytest benchmarks --benchmark-only -p no:randomly -o addopts="" \
  -p resilience --benchmark-json="$out/benchmarks.json" --resilience-report="$out" \
  --benchmark-columns=min,median,mean,rounds "${@:2}"
