#!/usr/bin/env python3
"""PyTorch + transformers side of bench/sampling.ts: a worker that reads one JSON command per line on stdin
and answers each with one JSON line on stdout (progress on stderr), so the TypeScript driver can interleave
the sides part by part in one run. torch.set_num_threads(N), torch.set_num_interop_threads(1), float32,
under torch.inference_mode().

Commands:
  {"part": "load", "model": "smollm2", "gguf": PATH}      SmolLM2 from its GGUF (dequantized to float32)
  {"part": "load", "model": "quickstart", "config": {...}} a LlamaForCausalLM of rise's resolved ModelConfig,
                                                           random weights (speed does not depend on them)
  {"part": "workload", "prompts": [[ids]], "samples": N, "new_tokens": T, "rows": R, "temperature": 1.0 (the default)}
      best-of-N as a transformers user writes it: model.generate(num_return_sequences=N, do_sample=True,
      temperature 1, top_k 0, top_p 1, min_new_tokens = max_new_tokens = T, so no row stops early), R // N
      prompts per call (equal lengths, no padding). generate expands each prompt N times before the prefill:
      no prefix sharing.
  {"part": "decode", "prompts": [[ids]], "new_tokens": T}
      greedy decoding of all the prompts as one batch with transformers' DynamicCache (models_bench.py's
      loop); tokens/s = B * T / wall, prefill included; first_row: the first row's tokens.
Each answer carries wall_s, tokens, tokens_per_s and other_cpu_load (engine_bench.CpuWatch).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from engine_bench import CpuWatch, log
from models_bench import generate_greedy


def load(cmd: dict):
    if cmd["model"] == "smollm2":
        path = Path(cmd["gguf"])
        return AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    c = cmd["config"]
    config = LlamaConfig(vocab_size=c["vocabSize"], hidden_size=c["dim"], intermediate_size=c["hidden"],
                         num_hidden_layers=c["layers"], num_attention_heads=c["heads"], num_key_value_heads=c["kvHeads"],
                         max_position_embeddings=c["context"], rms_norm_eps=c["normEps"], rope_theta=c["ropeTheta"],
                         tie_word_embeddings=c["tiedEmbeddings"], attention_bias=False, mlp_bias=False)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def workload(model, cmd: dict) -> dict:
    prompts, n, t = cmd["prompts"], cmd["samples"], cmd["new_tokens"]
    per_call = max(1, cmd["rows"] // n)
    gen = dict(do_sample=True, temperature=cmd.get("temperature", 1.0), top_k=0, top_p=1.0, max_new_tokens=t, min_new_tokens=t,
               num_return_sequences=n, use_cache=True, pad_token_id=0)
    torch.manual_seed(0)
    model.generate(torch.tensor(prompts[:1]), **{**gen, "num_return_sequences": 2, "max_new_tokens": 2, "min_new_tokens": 2})
    watch = CpuWatch()
    t0 = time.perf_counter()
    tokens = 0
    for i in range(0, len(prompts), per_call):
        batch = torch.tensor(prompts[i:i + per_call])
        out = model.generate(batch, attention_mask=torch.ones_like(batch), **gen)
        assert out.shape == (batch.shape[0] * n, batch.shape[1] + t), out.shape
        tokens += out.shape[0] * t
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "tokens": tokens, "tokens_per_s": tokens / wall, "prompts_per_call": per_call,
            "other_cpu_load": watch.loads()[0]}


def decode(model, cmd: dict) -> dict:
    prompt = torch.tensor(cmd["prompts"])
    t = cmd["new_tokens"]
    generate_greedy(model, prompt, 4)  # warm-up
    watch = CpuWatch()
    new, prefill_s, steps_s = generate_greedy(model, prompt, t)
    assert new.shape == (prompt.shape[0], t), new.shape
    wall = prefill_s + steps_s
    return {"wall_s": wall, "tokens": prompt.shape[0] * t, "tokens_per_s": prompt.shape[0] * t / wall,
            "other_cpu_load": watch.loads()[0], "first_row": new[0].tolist()}


def main() -> None:
    threads = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    print(json.dumps({"ready": True, "torch": torch.__version__, "transformers": transformers.__version__, "threads": threads}), flush=True)
    model = None
    for line in sys.stdin:
        cmd = json.loads(line)
        with torch.inference_mode():
            if cmd["part"] == "load":
                t0 = time.perf_counter()
                model = load(cmd)
                answer = {"wall_s": time.perf_counter() - t0}
            elif cmd["part"] == "workload":
                answer = workload(model, cmd)
            else:
                answer = decode(model, cmd)
        log(f"torch {cmd['part']}: {json.dumps(answer)}")
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
