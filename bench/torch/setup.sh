#!/usr/bin/env bash
# Creates bench/.venv with a pinned PyTorch (CPU use only) and numpy, from PyPI alone.
#
# Why not `pip install torch`: on linux x86_64 the PyPI torch wheel is the CUDA build and its
# dependency set adds ~4 GB (cuda-toolkit extras, cuDNN, NCCL, nvshmem, cusparselt, triton ...).
# Why not `pip install --no-deps torch`: that wheel does not import without the NVIDIA runtime
# libraries; libtorch_cpu.so itself has DT_NEEDED on libcudart/libcupti, and libtorch_cuda.so
# (always loaded) needs cublas, cublasLt, cufft, cusparse, cusparseLt, cufile, nccl, cudnn, nvrtc,
# nvshmem_host. (download.pytorch.org, home of the +cpu wheels, is not reachable here.)
#
# So the default ("lean") plan installs, all with --no-deps and exact pins:
#   torch + its pure-python deps + numpy + exactly the NVIDIA wheels whose libraries the dynamic
#   loader needs at import time.
# Left out: triton (~1 GB, only for torch.compile on GPU), cusolver (~260 MB, dlopen'ed lazily for
# CUDA linalg), cuda-bindings, nvtx, cccl, setuptools>=77 (only for building C++ extensions).
# The CPU kernels (MKL, oneDNN, ATen) are identical to a full install: they live in libtorch_cpu.so.
# If the lean venv fails the check, it falls back to the full, resolver-driven install.
#
# Idempotent: if bench/.venv already imports the pinned torch and runs a CPU matmul, it does nothing.
# Usage: bash bench/torch/setup.sh [--full]     (--full: skip the lean plan)
# Env:   PYTHON=python3.11 to pick the interpreter (default python3).
set -euo pipefail

TORCH_VERSION=2.15.0
NUMPY_VERSION=2.4.6

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(cd "$here/.." && pwd)/.venv"
py="${PYTHON:-python3}"
mode=lean
[[ "${1:-}" == "--full" ]] && mode=full

# Pure-python deps of torch (and theirs), pinned.
PURE=(
  filelock==4.2.11 typing-extensions==4.16.0 sympy==1.14.0 mpmath==1.3.0 networkx==3.6.1
  jinja2==3.1.6 markupsafe==3.0.4 fsspec==2026.9.0
)
# NVIDIA runtime libraries torch 2.15.0 (cu132 build) links against, at the versions its own
# metadata resolves to (cuda-toolkit==13.2.2 extras + the direct nvidia-* pins).
NVIDIA=(
  nvidia-cuda-runtime==13.2.86 nvidia-cuda-cupti==13.2.86 nvidia-cuda-nvrtc==13.2.86
  nvidia-cublas==13.4.1.3 nvidia-cufft==12.2.0.57 nvidia-cusparse==12.7.10.12
  nvidia-nvjitlink==13.5.37 nvidia-cufile==1.17.1.22
  nvidia-cudnn-cu13==9.26.0.51 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7
  nvidia-nvshmem-cu13==3.7.2
)

log() { echo "[torch-setup] $*" >&2; }

check() {
  # Imports torch, checks the pinned version, runs a CPU matmul; prints a one-line summary.
  "$venv/bin/python" - "$TORCH_VERSION" <<'EOF'
import sys
import torch, numpy
want = sys.argv[1]
assert torch.__version__.split('+')[0] == want, f"torch {torch.__version__} != {want}"
r = torch.ones(2) @ torch.ones(2)
assert float(r) == 2.0, r
a = torch.randn(64, 64)
assert torch.allclose(a @ torch.eye(64), a)
print(f"torch {torch.__version__} numpy {numpy.__version__} cpu_capability "
      f"{torch.backends.cpu.get_cpu_capability()} mkl {torch.backends.mkl.is_available()} "
      f"mkldnn {torch.backends.mkldnn.is_available()}")
EOF
}

start=$(date +%s)

if [[ -x "$venv/bin/python" ]] && summary=$(check 2>/dev/null); then
  log "already set up at $venv: $summary (nothing to do)"
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  log "creating venv $venv with $($py --version 2>&1)"
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)

if [[ "$mode" == lean ]]; then
  cmd=("${pip[@]}" install --no-cache-dir --progress-bar off --no-deps "torch==$TORCH_VERSION" "numpy==$NUMPY_VERSION" "${PURE[@]}" "${NVIDIA[@]}")
  log "lean install: ${cmd[*]}"
  "${cmd[@]}"
  if summary=$(check); then
    log "lean install works: $summary"
  else
    log "lean install failed the check; falling back to the full install"
    mode=full
  fi
fi

if [[ "$mode" == full ]]; then
  cmd=("${pip[@]}" install --no-cache-dir --progress-bar off "torch==$TORCH_VERSION" "numpy==$NUMPY_VERSION")
  log "full install: ${cmd[*]}"
  "${cmd[@]}"
  summary=$(check)
  log "full install works: $summary"
fi

end=$(date +%s)
log "done ($mode) in $((end - start)) s; venv size $(du -sh "$venv" | cut -f1)"
