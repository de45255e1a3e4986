#!/bin/sh
# The torch backend's GPU checks and figures, in one command (under 5 minutes on
# one GPU; needs a CUDA build of PyTorch and `pip install -e ".[torch]"`):
#
#     sh benchmarks/gpu_check.sh
#
# 1. the tests that skip without a GPU: the char model's float32 loss curve on the
#    GPU against the CPU's, diagnose's gradient flow on the GPU against NumPy's,
#    DDP over nccl in a process group of one;
# 2. training tokens/s of the torch backend on the GPU against the same model
#    written by hand in PyTorch on the GPU (the issue's bar: a ratio of at least
#    0.8, i.e. within 1.25x), with the NumPy backend on the CPU beside them.
set -e
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout 150 python -m pytest -q -p no:cacheprovider -rs \
    tests/test_torch_backend.py tests/test_torch_cli.py tests/test_torch_ddp.py -k "gpu or nccl"
timeout 150 python benchmarks/bench_backends.py --device cuda --seconds 3
