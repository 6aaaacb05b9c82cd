#!/usr/bin/env python3
"""PyTorch CPU reference for rise's real-model benchmark: SmolLM2-135M-Instruct, read from its GGUF by
transformers (dequantized to float32, as rise's engine does), with torch.set_num_threads(N) and
torch.set_num_interop_threads(1).

Measures, in this process:
  (a) LoRA training tokens/s with PEFT: rank 16, alpha 32, dropout 0, on q,k,v,o,gate,up,down (no bias);
      torch AdamW over the adapter weights only (lr 1e-4, betas (0.9, 0.999), eps 1e-8, weight decay 0.01,
      torch's defaults); a batch of 4 rows x 256 tokens of GSM8K-like text; the loss is transformers' causal
      LM loss on every token (labels = inputs; token t+1 predicted from tokens <= t, so 255 targets a row);
      tokens per step = 4 * 256. One warm-up step, then 3 timed steps; the figure is 1024 * 3 / their time.
  (b) prefill tokens/s: batch 1, a 256-token prompt, one forward with use_cache=True, under
      torch.inference_mode(); logits only at the last position (as generation needs, and as
      model.generate does), and also with logits at every position ("prefill_all_logits_tokens_per_s").
  (c) decode tokens/s with transformers' KV cache (DynamicCache), greedy, at batch 1, 16 and 64: a
      64-token prompt per row (distinct rows, no padding), 64 new tokens per row, every row runs the full
      length (no EOS stop). The prefill gives new token 1, each further token is one single-token step.
      decode_tokens_per_s[B] = B * 64 / wall of the whole generation, prefill included (the convention
      of engine_bench.py's new_tokens_per_s); decode_step_tokens_per_s[B] = B * 63 / the 63 steps' time.
  Attention is transformers' default implementation for Llama ("sdpa"); weights and compute in float32.

CLI:  models_bench.py [--gguf PATH] [--threads N]
  --gguf defaults to $RISE_TEST_GGUF, else the file `rise model pull smollm2-135m-instruct` keeps in the model store (sources/);
  --threads defaults to 2. Progress goes to stderr, one JSON object to stdout:
  {torch, transformers, peft, threads, lora_train_tokens_per_s, prefill_tokens_per_s,
   prefill_all_logits_tokens_per_s, decode_tokens_per_s: {"1","16","64"}, decode_step_tokens_per_s: {...},
   seconds: {load, lora, prefill, decode, total}, other_cpu_load: {...}, loadavg_start, loadavg_end, settings}
  other_cpu_load (from engine_bench.CpuWatch) is the share of all cores other processes used while a part
  ran; above ~0.05 the figure is contended. On the shared 2-core dev machine at load average ~7 (others'
  processes holding ~0.65 of the cores) a run took 11.5 min with 2 threads and 3.8 min with 1: two spinning
  thread pools fighting over 2 cores stall at every op, so only an idle machine gives the 2-thread figure.
Needs bench/.venv from bench/torch/setup.sh (torch, transformers, peft, gguf pinned there).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import peft
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from engine_bench import CpuWatch, log

DEFAULT_GGUF = os.path.join(os.environ.get("RISE_MODELS") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rise", "models"), "sources", "b179c9523d0e6a0f-SmolLM2-135M-Instruct.Q4_1.gguf")
LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
TRAIN_BATCH, TRAIN_LEN, TRAIN_WARMUP, TRAIN_STEPS, LR = 4, 256, 1, 3, 1e-4
PREFILL_LEN, PREFILL_RUNS = 256, 3
DECODE_BATCHES, DECODE_PROMPT, DECODE_NEW = (1, 16, 64), 64, 64

NAMES = ["Natalia", "Weng", "Betty", "Julie", "James", "Mark", "Albert", "Ken", "Alexis", "Tina"]
ITEMS = ["clips", "apples", "books", "stickers", "cookies", "marbles", "pencils", "cards"]


def gsm8k_like_text(rng: random.Random, problems: int) -> str:
    """Word problems with worked answers in GSM8K's layout (<<a*b=c>> calculations, '#### n' last)."""
    out = []
    for _ in range(problems):
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        a, k, price = rng.randint(12, 96), rng.randint(2, 6), rng.randint(2, 9)
        b = a * k
        total = a + b
        out.append(
            f"Question: {name} has {a} {item}. Her friend has {k} times as many {item}. Each of the {item} "
            f"sells for ${price}. How much money do they make if they sell all of their {item} together?\n"
            f"Answer: The friend has {a}*{k} = <<{a}*{k}={b}>>{b} {item}.\n"
            f"Together they have {a}+{b} = <<{a}+{b}={total}>>{total} {item}.\n"
            f"They make {total}*{price} = <<{total}*{price}={total * price}>>{total * price} dollars.\n"
            f"#### {total * price}\n")
    return "\n".join(out)


def token_rows(tok, rows: int, length: int, seed: int) -> torch.Tensor:
    """`rows` distinct windows of `length` tokens from one stream of GSM8K-like text."""
    rng = random.Random(seed)
    ids: list[int] = []
    while len(ids) < rows * length:
        ids += tok(gsm8k_like_text(rng, 8), add_special_tokens=False).input_ids
    return torch.tensor(ids[: rows * length]).view(rows, length)


def bench_lora(model, tok) -> dict:
    config = peft.LoraConfig(task_type="CAUSAL_LM", bias="none", **LORA)
    lora_model = peft.get_peft_model(model, config)
    lora_model.train()
    trainable = [p for p in lora_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=LR)
    batch = token_rows(tok, TRAIN_BATCH, TRAIN_LEN, seed=1)

    def step() -> float:
        loss = lora_model(input_ids=batch, labels=batch, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(TRAIN_WARMUP):
        first_loss = step()
    watch = CpuWatch()
    times, losses = [], []
    for _ in range(TRAIN_STEPS):
        t0 = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t0)
    other, _ = watch.loads()
    lora_model.unload()  # back to the plain model, adapters removed, for the inference parts
    tokens = TRAIN_BATCH * TRAIN_LEN
    return {
        "tokens_per_s": tokens * len(times) / sum(times),
        "step_s": times,
        "losses": [first_loss] + losses,
        "trainable_params": sum(p.numel() for p in trainable),
        "other_cpu_load": other,
    }


@torch.inference_mode()
def bench_prefill(model, tok) -> dict:
    prompt = token_rows(tok, 1, PREFILL_LEN, seed=2)
    result = {}
    for name, keep in (("last", 1), ("all", 0)):  # logits_to_keep=0 keeps every position
        model(input_ids=prompt, use_cache=True, logits_to_keep=keep)  # warm-up
        watch = CpuWatch()
        times = []
        for _ in range(PREFILL_RUNS):
            t0 = time.perf_counter()
            model(input_ids=prompt, use_cache=True, logits_to_keep=keep)
            times.append(time.perf_counter() - t0)
        result[name] = {"tokens_per_s": PREFILL_LEN * len(times) / sum(times), "run_s": times,
                        "other_cpu_load": watch.loads()[0]}
    return result


@torch.inference_mode()
def generate_greedy(model, prompt: torch.Tensor, new_tokens: int) -> tuple[torch.Tensor, float, float]:
    """(new token ids [B, new_tokens], prefill seconds, seconds of the single-token steps)."""
    t0 = time.perf_counter()
    out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
    tokens = [out.logits[:, -1].argmax(dim=-1, keepdim=True)]
    t1 = time.perf_counter()
    for _ in range(1, new_tokens):
        out = model(input_ids=tokens[-1], cache=out.cache, use_cache=True)
        tokens.append(out.logits[:, -1].argmax(dim=-1, keepdim=True))
    t2 = time.perf_counter()
    return torch.cat(tokens, dim=1), t1 - t0, t2 - t1


def bench_decode(model, tok, batch: int) -> dict:
    prompt = token_rows(tok, batch, DECODE_PROMPT, seed=3)
    generate_greedy(model, prompt, 8)  # warm-up
    watch = CpuWatch()
    new, prefill_s, steps_s = generate_greedy(model, prompt, DECODE_NEW)
    assert new.shape == (batch, DECODE_NEW), new.shape
    return {
        "tokens_per_s": batch * DECODE_NEW / (prefill_s + steps_s),
        "step_tokens_per_s": batch * (DECODE_NEW - 1) / steps_s,
        "wall_s": prefill_s + steps_s,
        "other_cpu_load": watch.loads()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", default=os.environ.get("RISE_TEST_GGUF", DEFAULT_GGUF))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    path = Path(args.gguf)
    if not path.is_file():
        sys.exit(f"{path}: GGUF file not found (--gguf PATH or RISE_TEST_GGUF)")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    loadavg_start = os.getloadavg()

    t_start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    seconds = {"load": time.perf_counter() - t_start}
    log(f"loaded {path.name} in {seconds['load']:.1f} s ({model.config._attn_implementation} attention)")

    t = time.perf_counter()
    lora = bench_lora(model, tok)
    seconds["lora"] = time.perf_counter() - t
    log(f"lora train: {lora['tokens_per_s']:.0f} tok/s, steps {[round(s, 2) for s in lora['step_s']]} s, "
        f"losses {[round(x, 3) for x in lora['losses']]}")

    model.eval()
    t = time.perf_counter()
    prefill = bench_prefill(model, tok)
    seconds["prefill"] = time.perf_counter() - t
    log(f"prefill: {prefill['last']['tokens_per_s']:.0f} tok/s (all logits {prefill['all']['tokens_per_s']:.0f})")

    t = time.perf_counter()
    decode = {}
    for b in DECODE_BATCHES:
        decode[str(b)] = bench_decode(model, tok, b)
        log(f"decode B={b}: {decode[str(b)]['tokens_per_s']:.1f} new tok/s "
            f"(steps only {decode[str(b)]['step_tokens_per_s']:.1f}), {decode[str(b)]['wall_s']:.2f} s/run")
    seconds["decode"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start

    print(json.dumps({
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "threads": args.threads,
        "model": path.name,
        "lora_train_tokens_per_s": round(lora["tokens_per_s"], 1),
        "prefill_tokens_per_s": round(prefill["last"]["tokens_per_s"], 1),
        "prefill_all_logits_tokens_per_s": round(prefill["all"]["tokens_per_s"], 1),
        "decode_tokens_per_s": {b: round(d["tokens_per_s"], 1) for b, d in decode.items()},
        "decode_step_tokens_per_s": {b: round(d["step_tokens_per_s"], 1) for b, d in decode.items()},
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "other_cpu_load": {"lora": lora["other_cpu_load"], "prefill": prefill["last"]["other_cpu_load"],
                           **{f"decode_{b}": d["other_cpu_load"] for b, d in decode.items()}},
        "loadavg_start": [round(x, 2) for x in loadavg_start],
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "lora_losses": [round(x, 4) for x in lora["losses"]],
        "settings": {
            "lora": {**LORA, "trainable_params": lora["trainable_params"], "optimizer": "AdamW", "lr": LR,
                     "batch": TRAIN_BATCH, "seq_len": TRAIN_LEN, "warmup_steps": TRAIN_WARMUP,
                     "timed_steps": TRAIN_STEPS},
            "prefill": {"batch": 1, "prompt_len": PREFILL_LEN, "runs": PREFILL_RUNS},
            "decode": {"batches": list(DECODE_BATCHES), "prompt_len": DECODE_PROMPT, "new_tokens": DECODE_NEW,
                       "greedy": True, "cache": "DynamicCache", "runs": 1},
            "attention": model.config._attn_implementation,
            "dtype": "float32",
        },
    }, indent=1))


if __name__ == "__main__":
    main()
