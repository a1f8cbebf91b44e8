#!/usr/bin/env bash
# Every GPU measurement the project needs, in one time-boxed run (stage 0 correctness <= ~90 s,
# stage 1 speed <= ~4 min). Installs nothing: runs from this tree. Results are appended, one JSON
# line per finished step, to ${OUT:-gpu-results}/gpu_results.jsonl. Usage (repository root):
#     bash benchmarks/gpu_suite.sh            # on the GPU machine
#     bash benchmarks/gpu_suite.sh --dry-run  # the same steps at the smallest sizes, on CPU
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt" 2>&1
fi
exec python3 benchmarks/gpu_suite.py --out "$OUT" "$@"
