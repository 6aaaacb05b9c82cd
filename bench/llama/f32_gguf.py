#!/usr/bin/env python3
"""Writes a float32 copy of the SmolLM2-135M-Instruct GGUF the model store keeps (Q4_1 as shipped): the same
metadata, every tensor dequantized by the gguf package, general.file_type ALL_F32. Those are the weights rise's
engine and the PyTorch reference compute with (both dequantize the same file), so llama.cpp runs on them too.

CLI:  f32_gguf.py [--gguf SRC] [--out DST]     (defaults: the store's file; bench/.venv/models/<name>.F32.gguf)
Prints DST. Idempotent: an existing DST is left alone.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import gguf
import numpy as np

STORE = Path(os.environ.get("RISE_MODELS") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rise" / "models")
SOURCE = STORE / "sources" / "b179c9523d0e6a0f-SmolLM2-135M-Instruct.Q4_1.gguf"
VENV = Path(__file__).resolve().parent.parent / ".venv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", type=Path, default=SOURCE)
    ap.add_argument("--out", type=Path, default=VENV / "models" / "SmolLM2-135M-Instruct.F32.gguf")
    a = ap.parse_args()
    if a.out.exists():
        print(a.out)
        return
    if not a.gguf.exists():
        sys.exit(f"f32_gguf: no {a.gguf}; run `rise model pull smollm2-135m-instruct` first")
    reader = gguf.GGUFReader(a.gguf)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    partial = a.out.with_suffix(".partial")
    writer = gguf.GGUFWriter(partial, arch)
    for field in reader.fields.values():
        if field.name in (gguf.Keys.General.ARCHITECTURE, gguf.Keys.General.FILE_TYPE) or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        writer.add_key_value(field.name, field.contents(), kind, sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for t in reader.tensors:
        writer.add_tensor(t.name, np.ascontiguousarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.rename(a.out)
    print(a.out)


if __name__ == "__main__":
    main()
