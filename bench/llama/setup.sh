#!/usr/bin/env bash
# Adds llama.cpp (through llama-cpp-python, from PyPI) to bench/.venv, built from source for this CPU,
# and writes a float32 GGUF of SmolLM2-135M-Instruct next to the shipped one, for bench/sampling.ts.
#
# PyPI has only the sdist of llama-cpp-python (no wheel), so pip compiles the vendored llama.cpp with
# cmake: GGML_NATIVE=ON (-march=native: the AVX-512 kernels of this machine), no BLAS, no GPU. That takes
# many minutes on 2 cores; it is done once (idempotent: a venv that imports the pinned version is left
# alone). The float32 GGUF is the shipped Q4_1 GGUF with every tensor dequantized by the gguf package:
# the very weights rise's engine and the PyTorch reference compute with (both dequantize the same file).
# Usage: bash bench/llama/setup.sh          (needs bench/.venv from bench/torch/setup.sh first)
# Env:   CMAKE_BUILD_PARALLEL_LEVEL (default 2).
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
DEPS=(diskcache==5.6.3)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$(cd "$here/.." && pwd)/.venv"
log() { echo "[llama-setup] $*" >&2; }
[[ -x "$venv/bin/python" ]] || { log "no $venv: run bash bench/torch/setup.sh first"; exit 1; }

check() {
  "$venv/bin/python" - "$LLAMA_CPP_PYTHON_VERSION" <<'PY'
import sys
import llama_cpp
assert llama_cpp.__version__ == sys.argv[1], f"llama-cpp-python {llama_cpp.__version__} != {sys.argv[1]}"
print(f"llama-cpp-python {llama_cpp.__version__}; system info: {llama_cpp.llama_print_system_info().decode()}")
PY
}

start=$(date +%s)
if summary=$(check 2>/dev/null); then
  log "already set up: $summary"
else
  export CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DLLAMA_CURL=OFF"
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
  cmd=("$venv/bin/python" -m pip --disable-pip-version-check --no-input install --no-cache-dir --progress-bar off
       --no-binary llama-cpp-python --no-deps "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" "${DEPS[@]}")
  log "building (CMAKE_ARGS=$CMAKE_ARGS): ${cmd[*]}"
  "${cmd[@]}"
  summary=$(check)
  log "built: $summary"
fi

"$venv/bin/python" "$here/f32_gguf.py"
log "done in $(( $(date +%s) - start )) s"
