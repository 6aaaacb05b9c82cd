#!/usr/bin/env python3
"""PyTorch CPU reference for rise's engine benchmark.

Measures, in this process, with torch.set_num_threads(N) and torch.set_num_interop_threads(1):
  * training throughput of a full fp32 train step (forward, weighted NLL loss, backward, global grad-norm
    clipping to 1.0, AdamW step) for each configured model/batch, with attention written as explicit
    matmul + masked softmax ("matmul", the main figure) and with F.scaled_dot_product_attention ("sdpa");
  * generation throughput (new tokens/s) with a KV cache and without one (the whole sequence re-run
    every step), under torch.inference_mode().

The model is the same Llama-style decoder as src/engine/transformer.ts, parameter for parameter:
  tok_emb [V, D] (normal, std 0.02)
  per layer i:  attn_norm [D] (ones)  wqkv [D, (H + 2*KVH)*hd]  wo [H*hd, D] (std 0.02/sqrt(2L))
                mlp_norm [D] (ones)   w_gate_up [D, 2*hidden]   w_down [hidden, D] (std 0.02/sqrt(2L))
  norm [D] (ones);  lm_head [D, V] only when tiedEmbeddings is false (else logits = x @ tok_emb.T)
  RMSNorm: x * rsqrt(mean(x^2, -1) + eps) * w, eps 1e-5.  No biases.
  Rotary ("rotate_half"): theta 10000, angles over hd/2 frequencies repeated twice,
  x*cos + rotate_half(x)*sin with rotate_half([x1, x2]) = [-x2, x1].
  Attention: scale 1/sqrt(hd), causal; KV heads repeated for GQA (query head h uses KV head h // (H/KVH)).
  MLP: [gate, up] = split(x @ w_gate_up) (gate first); (silu(gate) * up) @ w_down.
  Loss: token t+1 predicted from tokens <= t; per-token NLL (log_softmax + gather) times per-token weight
  (all ones here), summed, divided by the number of nonzero weights.
  AdamW(lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight_decay 0.1) with weight decay on the matrices only
  (tok_emb, wqkv, wo, w_gate_up, w_down, lm_head), not on the norm gains -- as src/engine/parameters.ts.

A train step on config {context: T} with batch B draws a [B, T+1] token tensor; the model runs on its
first T positions and the targets are the last T, so tokens per step = B*T.

FLOPs per train step (rise's convention):  6*P*B*T + 6*layers*B*T*T*dim
  with P = matmul parameters = layers*(D*(H+2KVH)*hd + H*hd*D + D*2*hidden + hidden*D) + D*V
  (the output head counts once, tied or not; the embedding lookup is excluded). The attention term is
  QK^T and AV (4*B*T*T*D forward per layer, x3 for forward+backward) halved for causality.

CLI:
  engine_bench.py [--threads N] [--out FILE.json] [--quick] [--configs JSON] [--gen JSON]
                  [--attention matmul,sdpa] [--min-time S] [--warmup N] [--min-steps N] [--budget S]
                  [--no-check]
  Defaults: full = 3 warm-up steps, then >= 3 timed steps and >= 3 s per train entry (generation: a short
  warm-up run, then runs for >= 3 s, at most 5); --quick = 1 warm-up step, >= 2 steps and >= 1 s
  (generation: one timed run). An entry stops after one timed step once it has run 10x min-time;
  entries not started before --budget seconds (280, quick 80) are skipped and listed under "skipped", and
  at 1.2x the budget running entries stop (a generation run cut short is dropped and listed), so even a
  contended machine cannot stretch a run past ~6 min (quick ~2 min). Uncontended: full ~1.5 min, quick ~35 s.
  --configs takes either a list of train entries or an object {"train": [...], "gen": {...}}:
    [{"name":"small","layers":4,"dim":128,"heads":4,"kvHeads":4,"hidden":352,"context":128,
      "vocabSize":104,"tiedEmbeddings":true,"batch":16}, ...]
    "hidden" defaults to ceil(8*dim/3/32)*32, "kvHeads" to heads, "tiedEmbeddings" to true,
    "ropeTheta" to 10000, "normEps" to 1e-5; "batch" may also be a list ("batches": [16, 32] works too).
  --gen (or "gen" in --configs):
    {"config":"small","batches":[1,32],"promptLen":32,"newTokens":96,"temperature":1.0,"kvCache":[true,false]}
    "config" names a train entry (its model shape is used); temperature 0 = greedy; "kvCache" picks
    which of the two modes run (default both). A null/false "gen" skips generation.
Progress goes to stderr; the JSON result to --out (and to stdout when --out is not given):
  {"torch_version", "threads", "flops_formula", "checks": [...], "skipped": [...], "max_other_cpu_load", "max_steal",
   "train": [{"name", "attention": "matmul"|"sdpa", "batch", "context", "tokens_per_s", "steps_per_s",
              "gflops", "step_ms" (mean), "step_ms_median", "step_ms_min", "steps", "flops_per_step",
              "matmul_params", "other_cpu_load", "steal", ...}],
   "generate": [{"config", "batch", "kv_cache", "new_tokens_per_s", "wall_s" (mean per run), "runs", ...}]}
  Generation: prefill of the prompt (logits for every prompt position) gives new token 1; each further
  token is one step: with kv_cache one token through the model against a preallocated cache, without it
  the whole sequence so far (logits for every position, as a plain forward pass). wall_s covers all of it.
  other_cpu_load is the share of all cores used by other processes while the entry ran, steal the share
  the hypervisor took (/proc/stat): above ~0.05 the figure is contended (two spinning thread pools
  fighting over 2 cores can be 10x slower); max_other_cpu_load / max_steal sum it up for the run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

FLOPS_FORMULA = "6*P*B*T + 6*layers*B*T*T*dim; P = layers*(D*(H+2*KVH)*hd + H*hd*D + D*2*hidden + hidden*D) + D*V"

DEFAULT_TRAIN = [
    {"name": "small", "layers": 4, "dim": 128, "heads": 4, "kvHeads": 4, "hidden": 352, "context": 128,
     "vocabSize": 104, "tiedEmbeddings": True, "batch": 16},
    {"name": "small", "layers": 4, "dim": 128, "heads": 4, "kvHeads": 4, "hidden": 352, "context": 128,
     "vocabSize": 104, "tiedEmbeddings": True, "batch": 32},
    {"name": "mid", "layers": 8, "dim": 512, "heads": 8, "kvHeads": 8, "hidden": 1376, "context": 256,
     "vocabSize": 104, "tiedEmbeddings": True, "batch": 8},
]
DEFAULT_GEN = {"config": "small", "batches": [1, 32], "promptLen": 32, "newTokens": 96, "temperature": 1.0}

MASKED = -1e9


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class CpuWatch:
    """CPU used by OTHER processes while a measurement ran, as a fraction of all cores (Linux /proc/stat).
    A busy machine makes every figure here and in the rise bench unreliable, so it goes into the JSON."""

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.t0, self.stat0, self.own0 = time.perf_counter(), self._stat(), time.process_time()

    @staticmethod
    def _stat():
        """(busy, steal) jiffies summed over CPUs; busy excludes idle, iowait and steal."""
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            steal = v[7] if len(v) > 7 else 0
            guest = sum(v[8:10]) if len(v) > 9 else 0  # already counted in user/nice
            return sum(v) - v[3] - v[4] - steal - guest, steal
        except (OSError, ValueError, IndexError):
            return None

    def loads(self):
        """(other processes' share of all cores, hypervisor steal share) over the watched interval."""
        stat = self._stat()
        wall = time.perf_counter() - self.t0
        if stat is None or self.stat0 is None or wall <= 0:
            return None, None
        cores = wall * (os.cpu_count() or 1)
        other = (stat[0] - self.stat0[0]) / self.hz - (time.process_time() - self.own0)
        steal = (stat[1] - self.stat0[1]) / self.hz
        return round(max(0.0, other / cores), 3), round(max(0.0, steal / cores), 3)


# ----------------------------------------------------------------------------------------------- model

def resolve_config(entry: dict) -> dict:
    dim = int(entry["dim"])
    heads = int(entry["heads"])
    c = {
        "name": entry.get("name", "model"),
        "vocabSize": int(entry["vocabSize"]),
        "layers": int(entry["layers"]),
        "dim": dim,
        "heads": heads,
        "kvHeads": int(entry.get("kvHeads", heads)),
        "hidden": int(entry.get("hidden") or math.ceil(8 * dim / 3 / 32) * 32),
        "context": int(entry["context"]),
        "ropeTheta": float(entry.get("ropeTheta", 10000.0)),
        "normEps": float(entry.get("normEps", 1e-5)),
        "tiedEmbeddings": bool(entry.get("tiedEmbeddings", True)),
    }
    if dim % heads or heads % c["kvHeads"] or (dim // heads) % 2:
        raise ValueError(f"bad head layout in config {c}")
    return c


def matmul_params(c: dict) -> int:
    D, H, KVH, L = c["dim"], c["heads"], c["kvHeads"], c["layers"]
    hd = D // H
    per_layer = D * (H + 2 * KVH) * hd + H * hd * D + D * 2 * c["hidden"] + c["hidden"] * D
    return L * per_layer + D * c["vocabSize"]


def train_flops(c: dict, B: int, T: int) -> int:
    return 6 * matmul_params(c) * B * T + 6 * c["layers"] * B * T * T * c["dim"]


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class Decoder(torch.nn.Module):
    def __init__(self, c: dict, attention: str = "matmul", seed: int = 0):
        super().__init__()
        self.c = c
        self.attention = attention
        D, H, KVH, L, V = c["dim"], c["heads"], c["kvHeads"], c["layers"], c["vocabSize"]
        hd = D // H
        self.hd = hd
        g = torch.Generator().manual_seed(seed)
        std, res_std = 0.02, 0.02 / math.sqrt(2 * L)

        def normal(*shape, s=std):
            return torch.nn.Parameter(torch.randn(*shape, generator=g) * s)

        def ones(n):
            return torch.nn.Parameter(torch.ones(n))

        self.tok_emb = normal(V, D)
        self.layers = torch.nn.ModuleList()
        for _ in range(L):
            layer = torch.nn.Module()
            layer.attn_norm = ones(D)
            layer.wqkv = normal(D, (H + 2 * KVH) * hd)
            layer.wo = normal(H * hd, D, s=res_std)
            layer.mlp_norm = ones(D)
            layer.w_gate_up = normal(D, 2 * c["hidden"])
            layer.w_down = normal(c["hidden"], D, s=res_std)
            self.layers.append(layer)
        self.norm = ones(D)
        self.lm_head = None if c["tiedEmbeddings"] else normal(D, V)

        # Rotary tables [context, hd]: angle(pos, i) = pos * theta^(-2i/hd), i < hd/2, repeated twice.
        inv_freq = c["ropeTheta"] ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        angles = torch.outer(torch.arange(c["context"], dtype=torch.float64), inv_freq)
        angles = torch.cat((angles, angles), dim=-1)
        self.register_buffer("rope_cos", angles.cos().float(), persistent=False)
        self.register_buffer("rope_sin", angles.sin().float(), persistent=False)

    def param_groups(self, weight_decay: float):
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            (no_decay if name.endswith("norm") else decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    def _attend(self, q, k, v, causal_offset: int | None):
        """q [B,H,S,hd], k/v [B,KVH,Tk,hd]. causal_offset = position of q's first row within k (None: no mask)."""
        groups = self.c["heads"] // self.c["kvHeads"]
        if groups > 1:
            k = k.repeat_interleave(groups, dim=1)
            v = v.repeat_interleave(groups, dim=1)
        S, Tk = q.shape[2], k.shape[2]
        if self.attention == "sdpa":
            if causal_offset is None or S == 1:
                return F.scaled_dot_product_attention(q, k, v)
            if causal_offset == 0 and S == Tk:
                return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
        if causal_offset is not None and S > 1:
            rows = torch.arange(S).unsqueeze(1) + causal_offset
            cols = torch.arange(Tk).unsqueeze(0)
            mask = torch.zeros(S, Tk).masked_fill_(cols > rows, MASKED)
            scores = scores + mask
        return torch.softmax(scores, dim=-1) @ v

    def forward(self, tokens: torch.Tensor, cache: list | None = None, pos: int = 0) -> torch.Tensor:
        """tokens [B, S] -> logits [B, S, V]. With a cache (list of (k, v) [B,KVH,maxLen,hd] per layer), the
        tokens sit at positions pos..pos+S-1 and their keys/values are written into it."""
        c = self.c
        B, S = tokens.shape
        H, KVH, hd, D = c["heads"], c["kvHeads"], self.hd, c["dim"]
        cos = self.rope_cos[pos:pos + S]
        sin = self.rope_sin[pos:pos + S]
        x = self.tok_emb[tokens]  # [B, S, D]
        for i, layer in enumerate(self.layers):
            h = rms_norm(x, layer.attn_norm, c["normEps"])
            qkv = (h @ layer.wqkv).view(B, S, H + 2 * KVH, hd).transpose(1, 2)
            q, k, v = qkv.split([H, KVH, KVH], dim=1)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if cache is not None:
                ck, cv = cache[i]
                ck[:, :, pos:pos + S] = k
                cv[:, :, pos:pos + S] = v
                k, v = ck[:, :, :pos + S], cv[:, :, :pos + S]
            o = self._attend(q, k, v, causal_offset=pos)
            x = x + o.transpose(1, 2).reshape(B, S, H * hd) @ layer.wo
            m = rms_norm(x, layer.mlp_norm, c["normEps"])
            gate, up = (m @ layer.w_gate_up).chunk(2, dim=-1)
            x = x + (F.silu(gate) * up) @ layer.w_down
        x = rms_norm(x, self.norm, c["normEps"])
        head = self.tok_emb.t() if self.lm_head is None else self.lm_head
        return x @ head

    def new_cache(self, B: int, max_len: int) -> list:
        shape = (B, self.c["kvHeads"], max_len, self.hd)
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in self.layers]


def weighted_nll(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(logits, dim=-1)
    nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    count = (weights != 0).sum().clamp(min=1)
    return (nll * weights).sum() / count


# ------------------------------------------------------------------------------------------- measuring

def bench_train(c: dict, B: int, attention: str, warmup: int, min_time: float, min_steps: int, max_steps: int,
                entry_cap: float, deadline: float = math.inf) -> dict:
    """Times steps until both min_steps and min_time are reached; past entry_cap seconds, or past the run's
    deadline (a contended machine), it stops as soon as one step is timed, so a run's length stays bounded."""
    T = c["context"]
    torch.manual_seed(1)
    model = Decoder(c, attention=attention)
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    batches = [torch.randint(0, c["vocabSize"], (B, T + 1)) for _ in range(4)]
    weights = torch.ones(B, T)
    params = list(model.parameters())
    losses = []

    def step(i: int) -> float:
        tokens = batches[i % len(batches)]
        opt.zero_grad(set_to_none=True)
        loss = weighted_nll(model(tokens[:, :T]), tokens[:, 1:], weights)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    t_warm = time.perf_counter()
    for i in range(warmup):
        losses.append(step(i))
        if time.perf_counter() - t_warm > entry_cap or time.perf_counter() > deadline:
            break
    watch = CpuWatch()
    times = []
    t_start = time.perf_counter()
    while len(times) < max_steps and (len(times) < min_steps or time.perf_counter() - t_start < min_time):
        if times and (time.perf_counter() - t_start > entry_cap or time.perf_counter() > deadline):
            break
        t0 = time.perf_counter()
        losses.append(step(warmup + len(times)))
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_start
    steps = len(times)
    flops = train_flops(c, B, T)
    times.sort()
    return {
        "name": c["name"],
        "attention": attention,
        "batch": B,
        "context": T,
        "layers": c["layers"], "dim": c["dim"], "heads": c["heads"], "kvHeads": c["kvHeads"],
        "hidden": c["hidden"], "vocabSize": c["vocabSize"], "tiedEmbeddings": c["tiedEmbeddings"],
        "tokens_per_step": B * T,
        "steps": steps,
        "wall_s": total,
        "tokens_per_s": B * T * steps / total,
        "steps_per_s": steps / total,
        "gflops": flops * steps / total / 1e9,
        "step_ms": 1000 * total / steps,
        "step_ms_median": 1000 * times[steps // 2],
        "step_ms_min": 1000 * times[0],
        "matmul_params": matmul_params(c),
        "flops_per_step": flops,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        **dict(zip(("other_cpu_load", "steal"), watch.loads())),
    }


def sample(logits: torch.Tensor, temperature: float, gen: torch.Generator) -> torch.Tensor:
    """logits [B, V] -> next tokens [B, 1]."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=gen)


class DeadlineHit(Exception):
    pass


def generate(model: Decoder, prompt: torch.Tensor, new_tokens: int, kv_cache: bool, temperature: float, seed: int = 0,
             deadline: float = math.inf) -> torch.Tensor:
    B, P = prompt.shape
    gen = torch.Generator().manual_seed(seed)
    if kv_cache:
        cache = model.new_cache(B, P + new_tokens)
        logits = model(prompt, cache=cache, pos=0)  # prefill
        out = [sample(logits[:, -1], temperature, gen)]
        for i in range(1, new_tokens):
            if time.perf_counter() > deadline:
                raise DeadlineHit
            logits = model(out[-1], cache=cache, pos=P + i - 1)
            out.append(sample(logits[:, -1], temperature, gen))
        return torch.cat(out, dim=1)
    seq = prompt
    for _ in range(new_tokens):
        if time.perf_counter() > deadline:
            raise DeadlineHit
        logits = model(seq)  # the whole sequence, every step
        seq = torch.cat([seq, sample(logits[:, -1], temperature, gen)], dim=1)
    return seq[:, P:]


def bench_generate(c: dict, B: int, prompt_len: int, new_tokens: int, kv_cache: bool, temperature: float,
                   min_time: float, max_runs: int, deadline: float = math.inf) -> dict | None:
    """Mean over whole runs; None when the run's deadline cut the first timed run short."""
    if prompt_len + new_tokens > c["context"]:
        raise ValueError(f"promptLen + newTokens = {prompt_len + new_tokens} exceeds context {c['context']}")
    torch.manual_seed(2)
    model = Decoder(c, attention="matmul").eval()
    prompt = torch.randint(0, c["vocabSize"], (B, prompt_len))
    runs = []
    with torch.inference_mode():
        generate(model, prompt, min(8, new_tokens), kv_cache, temperature)  # warm-up
        watch = CpuWatch()
        t_start = time.perf_counter()
        while len(runs) < max_runs and (not runs or time.perf_counter() - t_start < min_time):
            t0 = time.perf_counter()
            try:
                generate(model, prompt, new_tokens, kv_cache, temperature, seed=len(runs), deadline=deadline)
            except DeadlineHit:
                break
            runs.append(time.perf_counter() - t0)
    if not runs:
        return None
    wall = sum(runs) / len(runs)
    return {
        "config": c["name"],
        "batch": B,
        "kv_cache": kv_cache,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
        "temperature": temperature,
        "runs": len(runs),
        "wall_s": wall,
        "wall_s_min": min(runs),
        "new_tokens_per_s": B * new_tokens / wall,
        **dict(zip(("other_cpu_load", "steal"), watch.loads())),
    }


# ------------------------------------------------------------------------------------------------ checks

def self_check(c: dict) -> dict:
    """matmul vs sdpa attention, and cached vs uncached decoding (both attentions), agree on the same
    weights; run on the given config and on a small grouped-query (heads 4, kvHeads 2) variant of it."""
    out = {"config": c["name"], "ok": True}
    gqa = dict(c, name=c["name"] + "-gqa", layers=2, dim=64, heads=4, kvHeads=2, hidden=0)
    for cfg in (c, resolve_config(gqa)):
        torch.manual_seed(3)
        a = Decoder(cfg, attention="matmul").eval()
        b = Decoder(cfg, attention="sdpa").eval()
        b.load_state_dict(a.state_dict())
        P, N = 8, 6
        tokens = torch.randint(0, cfg["vocabSize"], (2, P + N))
        diffs = {}
        with torch.inference_mode():
            full = a(tokens)
            diffs["sdpa_vs_matmul_max_abs"] = (full - b(tokens)).abs().max().item()
            for m, key in ((a, "kv_vs_full_max_abs"), (b, "kv_sdpa_vs_full_max_abs")):
                cache = m.new_cache(2, P + N)
                parts = [m(tokens[:, :P], cache=cache, pos=0)]
                for i in range(P, P + N):
                    parts.append(m(tokens[:, i:i + 1], cache=cache, pos=i))
                diffs[key] = (full - torch.cat(parts, dim=1)).abs().max().item()
        prefix = "" if cfg is c else "gqa_"
        for k, v in diffs.items():
            out[prefix + k] = v
            out["ok"] = out["ok"] and v < 1e-4
    return out


# -------------------------------------------------------------------------------------------------- main

def expand_entries(entries: list) -> list:
    out = []
    for e in entries:
        batches = e.get("batches", e.get("batch", 16))
        for B in (batches if isinstance(batches, list) else [batches]):
            if int(B) < 1:
                raise SystemExit(f"batch must be >= 1, got {B!r} in {e}")
            out.append((resolve_config(e), int(B)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--out", help="write the JSON result here (else stdout)")
    ap.add_argument("--quick", action="store_true", help="fewer timed steps/runs (about a minute on 2 cores)")
    ap.add_argument("--configs", help="JSON: list of train entries, or {\"train\": [...], \"gen\": {...}}")
    ap.add_argument("--gen", help="JSON generation settings (overrides \"gen\" in --configs); null skips")
    ap.add_argument("--attention", default="matmul,sdpa", help="comma list of matmul, sdpa (default both)")
    ap.add_argument("--warmup", type=int, help="untimed train steps per entry (default 3, quick 1)")
    ap.add_argument("--min-time", type=float, help="seconds to time each entry for (default 3, quick 1)")
    ap.add_argument("--min-steps", type=int, help="timed train steps at least (default 3, quick 2)")
    ap.add_argument("--max-steps", type=int, default=1000)
    ap.add_argument("--budget", type=float, help="seconds after which entries not yet started are skipped; "
                    "at 1.2x it, running ones stop too (default 280, quick 80; a contended machine can be 10x slower)")
    ap.add_argument("--no-check", action="store_true", help="skip the matmul/sdpa and kv/no-kv agreement check")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    train_entries, gen = DEFAULT_TRAIN, DEFAULT_GEN
    if args.configs:
        spec = json.loads(args.configs)
        if isinstance(spec, list):
            train_entries = spec
        else:
            train_entries = spec.get("train", DEFAULT_TRAIN)
            gen = spec.get("gen", DEFAULT_GEN)
    if args.gen is not None:
        gen = json.loads(args.gen)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    min_time = args.min_time if args.min_time is not None else (1.0 if args.quick else 3.0)
    min_steps = args.min_steps if args.min_steps is not None else (2 if args.quick else 3)
    entry_cap = 10 * min_time
    budget = args.budget if args.budget is not None else (80.0 if args.quick else 280.0)
    attentions = [a.strip() for a in args.attention.split(",") if a.strip()]
    for a in attentions:
        if a not in ("matmul", "sdpa"):
            ap.error(f"unknown attention {a!r}")

    entries = expand_entries(train_entries)
    by_name = {c["name"]: c for c, _ in entries}
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    result = {
        "torch_version": torch.__version__,
        "threads": args.threads,
        "interop_threads": torch.get_num_interop_threads(),
        "quick": args.quick,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "dtype": "float32",
        "flops_formula": FLOPS_FORMULA,
        "optimizer": "torch.optim.AdamW(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1 on matrices) "
                     "+ clip_grad_norm_(1.0), library defaults otherwise",
        "timing": {"warmup_steps": warmup, "min_time_s": min_time, "min_steps": min_steps,
                   "entry_cap_s": entry_cap, "budget_s": budget,
                   "deadline_s": 1.2 * budget},
        "checks": [],
        "train": [],
        "generate": [],
        "skipped": [],
    }
    t_all = time.perf_counter()
    log(f"torch {torch.__version__}, threads {args.threads}, interop 1, {result['cpu_capability']}, quick={args.quick}")

    if not args.no_check:
        first = entries[0][0] if entries else resolve_config(DEFAULT_TRAIN[0])
        chk = self_check(first)
        result["checks"].append(chk)
        worst = max(v for k, v in chk.items() if k.endswith("_max_abs"))
        log(f"check {chk['config']} (+ a GQA variant): matmul/sdpa attention and cached/uncached decoding agree "
            f"to {worst:.1e} -> {'ok' if chk['ok'] else 'MISMATCH'}")
        if not chk["ok"]:
            raise SystemExit("self-check failed: implementations disagree")

    deadline = t_all + 1.2 * budget

    def over_budget(what: str) -> bool:
        if time.perf_counter() - t_all <= budget:
            return False
        log(f"skipping {what}: past the {budget:.0f} s budget")
        result["skipped"].append(what)
        return True

    for c, B in entries:
        for attention in attentions:
            if over_budget(f"train {c['name']} B={B} {attention}"):
                continue
            r = bench_train(c, B, attention, warmup, min_time, min_steps, args.max_steps, entry_cap, deadline)
            result["train"].append(r)
            log(f"train {r['name']:>6} B={B:<3} T={r['context']:<4} {attention:>6}: {r['tokens_per_s']:9.0f} tok/s "
                f"{r['gflops']:7.1f} GFLOP/s  {r['step_ms']:8.1f} ms/step ({r['steps']} steps, loss {r['loss_last']:.3f}, "
                f"other load {r['other_cpu_load']}, steal {r['steal']})")

    if gen:
        gname = gen.get("config", "small")
        known = {**{e["name"]: e for e in DEFAULT_TRAIN}, **{e.get("name", "model"): e for e in train_entries}}
        if gname not in known:
            raise SystemExit(f"gen.config {gname!r} names no train entry (have {sorted(known)})")
        gc = by_name.get(gname) or resolve_config(known[gname])
        if any(int(B) < 1 for B in gen.get("batches", [1, 32])):
            raise SystemExit(f"gen.batches must be >= 1: {gen.get('batches')}")
        modes = gen.get("kvCache", [True, False])
        modes = modes if isinstance(modes, list) else [modes]
        for B in gen.get("batches", [1, 32]):
            for kv in modes:
                if over_budget(f"generate {gc['name']} B={B} kv_cache={bool(kv)}"):
                    continue
                r = bench_generate(gc, int(B), int(gen.get("promptLen", 32)), int(gen.get("newTokens", 96)), bool(kv),
                                   float(gen.get("temperature", 1.0)), min_time / 2 if args.quick else min_time,
                                   1 if args.quick else 5, deadline)
                if r is None:
                    log(f"skipping generate {gc['name']} B={B} kv_cache={bool(kv)}: cut short by the deadline")
                    result["skipped"].append(f"generate {gc['name']} B={B} kv_cache={bool(kv)} (cut short)")
                    continue
                result["generate"].append(r)
                log(f"generate {r['config']:>6} B={r['batch']:<3} kv_cache={str(kv):<5}: "
                    f"{r['new_tokens_per_s']:9.1f} new tok/s  {r['wall_s']:.3f} s/run ({r['runs']} runs, other load {r['other_cpu_load']}, steal {r['steal']})")

    result["total_s"] = time.perf_counter() - t_all
    rows = result["train"] + result["generate"]
    for key, label in (("other_cpu_load", "other processes used"), ("steal", "the hypervisor stole")):
        vals = [r[key] for r in rows if r.get(key) is not None]
        result["max_" + key] = max(vals) if vals else None
        if vals and max(vals) > 0.05:
            log(f"WARNING: {label} up to {max(vals):.0%} of the CPUs during measurements; "
                f"figures are contended (see {key} per entry)")
    log(f"total {result['total_s']:.1f} s")
    text = json.dumps(result, indent=2)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")
        log(f"wrote {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
