#!/usr/bin/env python3
"""Reference values for src/models/dequantize.ts, from the `gguf` package's own numpy dequantizers.

Why: the TypeScript decoders are written by hand from GGML's block layouts; this script gets the same
numbers from an implementation that shares none of that code. Each case is a few blocks of random bytes
(every bit pattern of the codes is fair game) whose f16 scale fields are overwritten with finite values,
so the expected floats are finite and exercise signs, subnormal and large scales alike.

Writes test/fixtures/dequantize-cases.json:
  generator: versions; cases[]: {type (GGML name), count (values), bytes (base64 of the encoding),
  expected (base64 of the little-endian float32 values gguf.quants.dequantize returns)}.

Regenerate:
  bench/.venv/bin/python scripts/reference/dequantize_cases.py [--out test/fixtures/dequantize-cases.json]
Generated with gguf 0.19.0 and numpy 2.4.6 (pip install gguf==0.19.0 into bench/.venv).
"""
import argparse
import base64
import importlib.metadata
import json
import os

import gguf
import numpy as np
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as T

# Byte offsets of each block's f16 scale fields.
SCALE_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}


def random_halves(rng, n):
    """Finite f16 values over many magnitudes, both signs, a few subnormals and zeros."""
    values = rng.standard_normal(n) * np.exp2(rng.integers(-20, 4, n))
    values[rng.random(n) < 0.05] = 0.0
    return values.astype(np.float16)


def encoding(rng, qtype, blocks):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    count = blocks * block_size
    if qtype == T.F32:
        return (rng.standard_normal(count) * np.exp2(rng.integers(-30, 30, count))).astype(np.float32).view(np.uint8), count
    if qtype == T.F16:
        return random_halves(rng, count).view(np.uint8), count
    if qtype == T.BF16:
        bits = (rng.standard_normal(count).astype(np.float32) * np.float32(100)).view(np.uint32) >> 16
        return bits.astype(np.uint16).view(np.uint8), count
    raw = rng.integers(0, 256, (blocks, type_size), dtype=np.uint8)
    for offset in SCALE_FIELDS[qtype]:
        raw[:, offset:offset + 2] = random_halves(rng, blocks).view(np.uint8).reshape(blocks, 2)
    return raw.reshape(-1), count


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '../../test/fixtures/dequantize-cases.json'))
    args = parser.parse_args()
    rng = np.random.default_rng(20240607)
    cases = []
    for qtype in [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q4_K, T.Q5_K, T.Q6_K]:
        blocks = 3 if GGML_QUANT_SIZES[qtype][0] == 256 else 8
        raw, count = encoding(rng, qtype, blocks)
        expected = gguf.quants.dequantize(raw, qtype).astype(np.float32).reshape(-1)
        assert expected.size == count and np.isfinite(expected).all(), qtype.name
        cases.append({
            'type': qtype.name,
            'count': count,
            'bytes': base64.b64encode(raw.tobytes()).decode(),
            'expected': base64.b64encode(expected.astype('<f4').tobytes()).decode(),
        })
    with open(args.out, 'w') as f:
        json.dump({'generator': {'gguf': importlib.metadata.version('gguf'), 'numpy': np.__version__}, 'cases': cases}, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
