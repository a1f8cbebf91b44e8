#!/usr/bin/env bash
# Every GPU measurement the issues ask for, in one run of at most ~9 minutes on one H100.
# Writes logs to ${OUT:-gpu-results}/ and prints a summary; each step has its own time limit so
# one slow step cannot eat the others' budget. Usage (on the GPU machine, repo root):
#     bash benchmarks/gpu_suite.sh
set -uo pipefail
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 BCPD_SIM_PROGRESS=0
# Run from the tree: no pip install (its build isolation fetches setuptools from an index, which
# fails on a machine without network). Check what the steps import, up front, in one line.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import torch, numpy, scipy, pandas, pyarrow, bcpd_sim" 2>"$OUT/imports.log" \
  || { echo "missing import: $(tail -n 1 "$OUT/imports.log")"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  echo "   exit $?"; tail -n 6 "$OUT/$name.log"
}
step cuda_tests 150 python3 -m pytest -q tests/test_vision_pipeline.py tests/test_vision_train.py tests/test_vision_cuda.py -k cuda
step ensemble_gpu_target 150 python3 benchmarks/bench_ensemble.py --gpu-target
step cifar_resnet56_standard 60 python3 benchmarks/bench_cifar.py --arch resnet56 --recipe standard
step cifar_resnet56_fast 60 python3 benchmarks/bench_cifar.py --arch resnet56 --recipe fast
step cifar_resnet32x4_fast 60 python3 benchmarks/bench_cifar.py --arch resnet32x4 --recipe fast
step distill 120 python3 benchmarks/bench_distill.py
echo "logs in $OUT/"
