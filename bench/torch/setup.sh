#!/usr/bin/env bash
# Creates bench/.venv with a pinned PyTorch (CPU use only) and numpy, from PyPI alone, and the pinned
# Hugging Face stack the real-model references use (transformers with its GGUF loader, peft, gguf,
# accelerate, safetensors, tokenizers: scripts/reference/logits_reference.py, bench/torch/models_bench.py).
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
# The Hugging Face stack goes in the same way: lean = exactly the EXTRAS pins (the closure of the six
# top-level packages' install requirements beyond torch's, at the versions that resolved together),
# --no-deps; full = the six top-level pins through the resolver. sentencepiece is left out: the GGUF
# tokenizer path does not need it.
#
# Idempotent: if bench/.venv already imports the pinned torch and runs a CPU matmul, torch is left
# alone; if every EXTRAS pin is installed and the stack imports and wraps a model in LoRA, so are they.
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
# The Hugging Face stack, and everything it needs beyond torch's own set above, pinned.
EXTRAS_TOP=(
  transformers==5.24.0 peft==0.21.2 gguf==0.19.0 accelerate==1.15.0 safetensors==0.8.0 tokenizers==0.23.3
)
EXTRAS=(
  "${EXTRAS_TOP[@]}"
  huggingface-hub==2.4.0 hf-xet==1.8.0 httpx2==2.16.2 httpcore2==2.16.2 h11==0.16.0 anyio==4.16.0
  idna==3.20 truststore==0.10.5 click==8.5.1 packaging==26.4 pyyaml==6.0.4 regex==2026.11.19
  tqdm==4.70.1 psutil==7.2.2 requests==2.34.2 charset-normalizer==3.5.3 urllib3==2.8.0
  certifi==2026.10.19.post1 typer==0.29.2 shellingham==1.5.4 annotated-doc==0.0.7 rich==15.0.0
  markdown-it-py==4.3.0 mdurl==0.1.2 pygments==2.21.0 pydantic==2.14.4 pydantic-core==2.50.5
  annotated-types==0.8.0 typing-inspection==0.4.5
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

check_extras() {
  # Checks each pin given is the installed version, then that transformers builds a tiny Llama and peft
  # wraps it in LoRA; prints a one-line summary.
  "$venv/bin/python" - "$@" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version

def installed(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return None

wrong = [f"{pin} (installed: {installed(pin.split('==')[0])})" for pin in sys.argv[1:]
         if installed(pin.split("==")[0]) != pin.split("==")[1]]
assert not wrong, "not as pinned: " + ", ".join(wrong)
import gguf, peft, transformers
from transformers import LlamaConfig, LlamaForCausalLM
tiny = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                    num_attention_heads=2, num_key_value_heads=1))
lora = peft.get_peft_model(tiny, peft.LoraConfig(r=2, target_modules=["q_proj"]))
assert lora.get_nb_trainable_parameters()[0] > 0
print(f"transformers {transformers.__version__} peft {peft.__version__} gguf {version('gguf')}")
EOF
}

start=$(date +%s)

torch_ready=false
if [[ -x "$venv/bin/python" ]] && summary=$(check 2>/dev/null); then
  log "torch already set up at $venv: $summary"
  torch_ready=true
  if summary=$(check_extras "${EXTRAS[@]}" 2>/dev/null); then
    log "extras already set up: $summary (nothing to do)"
    exit 0
  fi
fi

if [[ ! -x "$venv/bin/python" ]]; then
  log "creating venv $venv with $($py --version 2>&1)"
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)

if ! $torch_ready && [[ "$mode" == lean ]]; then
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

if ! $torch_ready && [[ "$mode" == full ]]; then
  cmd=("${pip[@]}" install --no-cache-dir --progress-bar off "torch==$TORCH_VERSION" "numpy==$NUMPY_VERSION")
  log "full install: ${cmd[*]}"
  "${cmd[@]}"
  summary=$(check)
  log "full install works: $summary"
fi

if [[ "$mode" == lean ]]; then
  cmd=("${pip[@]}" install --no-cache-dir --progress-bar off --no-deps "${EXTRAS[@]}")
  log "lean extras install: ${cmd[*]}"
  "${cmd[@]}"
  summary=$(check_extras "${EXTRAS[@]}")
else
  cmd=("${pip[@]}" install --no-cache-dir --progress-bar off "${EXTRAS_TOP[@]}")
  log "full extras install: ${cmd[*]}"
  "${cmd[@]}"
  summary=$(check_extras "${EXTRAS_TOP[@]}")
fi
log "extras work: $summary"

end=$(date +%s)
log "done ($mode) in $((end - start)) s; venv size $(du -sh "$venv" | cut -f1)"
