#!/usr/bin/env python3
"""Reference logits for SmolLM2-135M-Instruct, from Hugging Face transformers' own GGUF loader.

Why: rise reads the GGUF and runs the decoder with its own code (src/engine); this script computes the same
numbers with an implementation that shares none of it -- transformers dequantizes the Q4_1/Q8_0 tensors
(through the `gguf` package), un-permutes q_proj/k_proj from llama.cpp's rotary layout and runs its own
LlamaForCausalLM in float32 on the CPU, in eval mode. The TypeScript tests compare against the fixture.

Writes test/fixtures/smollm2-logits.json:
  model: the file's name and sha256; generator: the versions below; maxAbsLogit over every prompt;
  prompts[]: name, text (as tokenized), tokenIds (HF tokenizer, no BOS: the GGUF says add_bos_token false),
    ids (the compared vocabulary subset: the 32 top ids of the last position, 32 seeded random ids),
    positions[]: {argmax, argmaxLogit, logsumexp, logits (at `ids`, same order)}, maxAbsLogit,
    and for the chat prompts greedy: {newTokenIds, text, margins (top-1 minus top-2 logit at each step,
    so a test can tell a real divergence from a near tie)}.
  Numbers are float32 logits rounded to 6 decimals; logsumexp is computed in float64 from those logits.

Regenerate (about a minute on 2 cores; the venv comes from bench/torch/setup.sh):
  bench/.venv/bin/python scripts/reference/logits_reference.py [GGUF] [--out test/fixtures/smollm2-logits.json]
  GGUF defaults to $RISE_TEST_GGUF, else the file `rise model pull smollm2-135m-instruct` keeps in the model store (sources/).
Generated with: Python 3.11.7, torch 2.15.0 (CPU), transformers 5.24.0, gguf 0.19.0, tokenizers 0.23.3,
numpy 2.4.6 (bench/torch/setup.sh pins them).
"""
import argparse
import hashlib
import json
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

import gguf
import numpy as np
import tokenizers
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

DEFAULT_GGUF = os.path.join(os.environ.get("RISE_MODELS") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rise", "models"), "sources", "b179c9523d0e6a0f-SmolLM2-135M-Instruct.Q4_1.gguf")
REPO_ROOT = Path(__file__).resolve().parents[2]
TOP_K = 32
RANDOM_IDS = 32
SEED = 20240601
NEW_TOKENS = 20

GSM8K_QUESTION = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?"
)
# (name, chat?) -> the user message for chat prompts, the raw text otherwise.
PROMPTS = [
    ("chat_gsm8k", True, GSM8K_QUESTION),
    ("chat_explain", True, "Explain in two sentences why the sky is blue."),
    ("english", False, "The quick brown fox jumps over the lazy dog. Meanwhile, the river kept flowing "
                       "past the old mill, as it had for a hundred years."),
    ("python", False, "def fibonacci(n: int) -> list[int]:\n    a, b = 0, 1\n    out = []\n"
                      "    for _ in range(n):\n        out.append(a)\n        a, b = b, a + b\n    return out\n"),
    ("digits_unicode", False, "Order #40213 costs €1,299.95 (≈ ¥187 000) — naïve café, 東京 → Zürich 🚀 3.14159e-7"),
]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def r6(x: float) -> float:
    return round(float(x), 6)


def check_dequantized(model, path: Path) -> None:
    """Fails unless transformers' weights are the GGUF's dequantized tensors (q_proj up to llama.cpp's row
    permutation), so the fixture cannot silently come from zeros or a skipped conversion."""
    reader = gguf.GGUFReader(str(path))
    tensors = {t.name: t for t in reader.tensors}

    def dequant(name: str) -> np.ndarray:
        t = tensors[name]
        return gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)

    types = {n: tensors[n].tensor_type.name for n in ("token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_v.weight")}
    assert types == {"token_embd.weight": "Q8_0", "blk.0.attn_q.weight": "Q4_1", "blk.0.attn_v.weight": "Q4_1"}, \
        f"{path}: unexpected tensor types {types}"
    layer0 = model.model.layers[0].self_attn
    pairs = [
        ("token_embd.weight", model.model.embed_tokens.weight),
        ("blk.0.attn_v.weight", layer0.v_proj.weight),
    ]
    for name, w in pairs:
        got = w.detach().numpy()
        assert np.abs(got).max() > 0, f"{name}: transformers holds all zeros"
        assert np.array_equal(got, dequant(name)), f"{name}: transformers' weight differs from gguf's dequantization"
    q_hf = layer0.q_proj.weight.detach().numpy()
    q_gguf = dequant("blk.0.attn_q.weight")
    assert not np.array_equal(q_hf, q_gguf), "blk.0.attn_q.weight: transformers did not un-permute q_proj"
    # Same rows, reordered: sort each matrix's rows lexicographically and compare.
    key = lambda m: m[np.lexsort(m.T[::-1])]
    assert np.array_equal(key(q_hf), key(q_gguf)), "blk.0.attn_q.weight: q_proj rows are not a permutation of the GGUF's"
    print(f"dequantization checked: token_embd (Q8_0) and blk.0.attn_v (Q4_1) equal gguf's dequantize; "
          f"q_proj is a row permutation; |embed| max {np.abs(pairs[0][1].detach().numpy()).max():.4f}", file=sys.stderr)


def render(tok, chat: bool, text: str) -> str:
    if not chat:
        return text
    return tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)


@torch.inference_mode()
def prompt_record(model, tok, index: int, name: str, chat: bool, message: str) -> dict:
    text = render(tok, chat, message)
    token_ids = tok(text, add_special_tokens=False).input_ids
    input_ids = torch.tensor([token_ids])
    logits = model(input_ids=input_ids).logits[0].float()  # [T, V]
    vocab = logits.shape[1]
    top = torch.topk(logits[-1], TOP_K).indices.tolist()
    rng = np.random.default_rng(SEED + index)
    rand = rng.choice(vocab, size=RANDOM_IDS, replace=False).tolist()
    ids = sorted(set(top) | set(int(i) for i in rand))
    lse = torch.logsumexp(logits.double(), dim=-1)
    argmax = logits.argmax(dim=-1)
    positions = [
        {
            "argmax": int(argmax[t]),
            "argmaxLogit": r6(logits[t, argmax[t]]),
            "logsumexp": r6(lse[t]),
            "logits": [r6(v) for v in logits[t, ids].tolist()],
        }
        for t in range(logits.shape[0])
    ]
    record = {
        "name": name,
        "chat": chat,
        "text": text,
        "tokenIds": token_ids,
        "ids": ids,
        "positions": positions,
        "maxAbsLogit": r6(logits.abs().max()),
    }
    if chat:
        record["greedy"] = greedy(model, tok, input_ids)
    return record


@torch.inference_mode()
def greedy(model, tok, input_ids: torch.Tensor) -> dict:
    out = model.generate(
        input_ids=input_ids,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=NEW_TOKENS,
        do_sample=False,
        output_scores=True,
        return_dict_in_generate=True,
        pad_token_id=tok.pad_token_id,
    )
    new_ids = out.sequences[0, input_ids.shape[1]:].tolist()
    margins = []
    for scores in out.scores:
        top2 = torch.topk(scores[0].float(), 2).values
        margins.append(r6(top2[0] - top2[1]))
    return {"newTokenIds": new_ids, "text": tok.decode(new_ids), "margins": margins}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gguf", nargs="?", default=os.environ.get("RISE_TEST_GGUF", DEFAULT_GGUF))
    ap.add_argument("--out", default=str(REPO_ROOT / "test/fixtures/smollm2-logits.json"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = Path(args.gguf)
    if not path.is_file():
        sys.exit(f"{path}: GGUF file not found (pass its path or set RISE_TEST_GGUF)")

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    t1 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    model.eval()
    t2 = time.perf_counter()
    print(f"transformers load: tokenizer {t1 - t0:.1f} s, model {t2 - t1:.1f} s", file=sys.stderr)
    check_dequantized(model, path)

    prompts = [prompt_record(model, tok, i, *p) for i, p in enumerate(PROMPTS)]
    t3 = time.perf_counter()
    for p in prompts:
        if "greedy" in p:
            print(f"greedy {p['name']}: {p['greedy']['text']!r}", file=sys.stderr)

    fixture = {
        "about": "Reference logits of SmolLM2-135M-Instruct from transformers' GGUF loader; "
                 "regenerate with scripts/reference/logits_reference.py",
        "model": {"file": path.name, "sha256": sha256(path)},
        "generator": {
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "gguf": version("gguf"), "tokenizers": tokenizers.__version__, "numpy": np.__version__, "dtype": "float32", "device": "cpu",
        },
        "topK": TOP_K, "randomIds": RANDOM_IDS, "seed": SEED, "newTokens": NEW_TOKENS,
        "eosTokenId": tok.eos_token_id,
        "maxAbsLogit": max(p["maxAbsLogit"] for p in prompts),
        "prompts": prompts,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(fixture, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {out} ({out.stat().st_size} bytes; {sum(len(p['tokenIds']) for p in prompts)} positions); "
          f"forward + greedy {t3 - t2:.1f} s, total {time.perf_counter() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
