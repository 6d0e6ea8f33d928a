#!/usr/bin/env bash
# The GPU check, one command on a machine with a CUDA GPU (about 5 minutes):
# the CUDA tests (mixed-precision training steps, CUDA predictions equal to
# CPU ones, the inference paths), then the paper's throughput protocol for
# M0-M5 with the paper's V100 figures beside it.
#   bash tools/analysis_tools/gpu_check.sh [PYTHON]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PY=${1:-${PYTHON:-.venv/bin/python}}
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else
    'error: no CUDA GPU (torch.cuda.is_available() is False)')"
"$PY" -c "import torch; print('GPU:', torch.cuda.get_device_name(), '| torch', torch.__version__)"
echo "==> CUDA tests"
"$PY" -m pytest -p no:xdist -m cuda tests -q
echo "==> throughput, 224x224, BN folded, traced, fp16 autocast"
"$PY" tools/analysis_tools/benchmark.py --arch m0 m1 m2 m3 m4 m5 --gpu-throughput
