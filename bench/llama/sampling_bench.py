#!/usr/bin/env python3
"""llama.cpp side of bench/sampling.ts (through llama-cpp-python's C API; bench/llama/setup.sh builds it for
this CPU): a worker with the protocol of bench/torch/sampling_bench.py, one JSON command per stdin line, one
JSON answer per stdout line. n_threads = n_threads_batch = --threads; KV cache in float32 (type_k = type_v =
F32; llama.cpp's default is F16); flash attention left at llama.cpp's default (auto).

Commands:
  {"part": "load", "model": "smollm2", "gguf": PATH}   the float32 GGUF bench/llama/f32_gguf.py writes
  {"part": "workload", "prompts": [[ids]], "samples": N, "new_tokens": T, "rows": R, "temperature": 1.0 (the default)}
      best-of-N as llama.cpp's own `batched` example does it, prefix shared: R // N prompts per round in one
      unified KV cache; each prompt's tokens are decoded once, tagged with the ids of its N sequences, and the
      N sequences then decode one token each per step, sampled at temperature 1 from the full softmax (numpy,
      vectorised over the batch); no row stops early.
  {"part": "decode", "prompts": [[ids]], "new_tokens": T}
      greedy decoding of all prompts as one batch, one sequence each (per-sequence KV streams, kv_unified
      off); tokens/s = B * T / wall, prefill included; first_row: the first row's tokens.
"""
from __future__ import annotations

import ctypes
import json
import sys
import time

import llama_cpp as L
import numpy as np

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "torch"))
from engine_bench import CpuWatch, log  # noqa: E402

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
N_BATCH = 2048
# llama.cpp logs every context it makes to stderr; kept referenced so ctypes does not free the callback.
QUIET = L.llama_log_callback(lambda level, text, data: None)


class Model:
    def __init__(self, path: str):
        params = L.llama_model_default_params()
        params.n_gpu_layers = 0
        self.model = L.llama_model_load_from_file(path.encode(), params)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        self.vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))

    def context(self, n_ctx: int, n_seq: int, unified: bool):
        p = L.llama_context_default_params()
        p.n_ctx = n_ctx
        p.n_batch = N_BATCH
        p.n_ubatch = 512
        p.n_seq_max = n_seq
        p.n_threads = p.n_threads_batch = THREADS
        p.type_k = p.type_v = L.GGML_TYPE_F32
        p.kv_unified = unified
        p.no_perf = True
        ctx = L.llama_init_from_model(self.model, p)
        if not ctx:
            raise RuntimeError(f"llama.cpp could not make a context of {n_ctx} cells, {n_seq} sequences")
        return ctx


class Batch:
    """A llama_batch filled token by token: (token, position, sequence ids, wants logits)."""

    def __init__(self, capacity: int, seqs_per_token: int):
        self.b = L.llama_batch_init(capacity, 0, seqs_per_token)

    def fill(self, items):
        b = self.b
        for i, (tok, pos, seqs, logits) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos, len(seqs), int(logits)
            for j, s in enumerate(seqs):
                b.seq_id[i][j] = s
        b.n_tokens = len(items)
        return b

    def free(self):
        L.llama_batch_free(self.b)


def decode(ctx, batch: Batch, items) -> None:
    rc = L.llama_decode(ctx, batch.fill(items))
    if rc != 0:
        raise RuntimeError(f"llama_decode returned {rc}")


def logits(ctx, rows: int, vocab: int) -> np.ndarray:
    """The logits of the batch's outputs, in batch order: [rows, vocab], a view into llama.cpp's buffer."""
    return np.ctypeslib.as_array(L.llama_get_logits(ctx), shape=(rows * vocab,)).reshape(rows, vocab)


def sample(lg: np.ndarray, rng: np.random.Generator, temperature: float) -> np.ndarray:
    w = np.exp((lg - lg.max(axis=1, keepdims=True)) / temperature)
    c = np.cumsum(w, axis=1)
    u = rng.random(lg.shape[0]) * c[:, -1]
    return np.minimum((c < u[:, None]).sum(axis=1), lg.shape[1] - 1)


def workload(m: Model, cmd: dict) -> dict:
    prompts, n, t = cmd["prompts"], cmd["samples"], cmd["new_tokens"]
    per_round = max(1, cmd["rows"] // n)
    seqs = per_round * n
    n_ctx = per_round * max(map(len, prompts)) + seqs * t + 256
    ctx = m.context(n_ctx, seqs, unified=True)
    batch = Batch(max(N_BATCH, seqs), n)
    rng = np.random.default_rng(0)
    temperature = cmd.get("temperature", 1.0)
    watch = CpuWatch()
    t0 = time.perf_counter()
    tokens = 0
    for r in range(0, len(prompts), per_round):
        group = prompts[r:r + per_round]
        L.llama_memory_clear(L.llama_get_memory(ctx), True)
        items = [(tok, j, list(range(p * n, (p + 1) * n)), j == len(pr) - 1) for p, pr in enumerate(group) for j, tok in enumerate(pr)]
        assert len(items) <= N_BATCH, "a round's prompts exceed one llama_decode batch"
        decode(ctx, batch, items)
        first = logits(ctx, len(group), m.vocab)
        nxt = sample(np.repeat(first, n, axis=0), rng, temperature)
        for step in range(1, t):
            decode(ctx, batch, [(int(nxt[s]), len(group[s // n]) + step - 1, [s], True) for s in range(len(group) * n)])
            nxt = sample(logits(ctx, len(group) * n, m.vocab), rng, temperature)
        tokens += len(group) * n * t
    wall = time.perf_counter() - t0
    batch.free()
    L.llama_free(ctx)
    return {"wall_s": wall, "tokens": tokens, "tokens_per_s": tokens / wall, "prompts_per_call": per_round,
            "other_cpu_load": watch.loads()[0]}


def greedy(m: Model, prompts, t: int) -> tuple[float, list[int]]:
    B, P = len(prompts), max(map(len, prompts))
    ctx = m.context(B * (P + t + 16), B, unified=False)
    batch = Batch(N_BATCH, 1)
    t0 = time.perf_counter()
    items = [(tok, j, [s], j == len(pr) - 1) for s, pr in enumerate(prompts) for j, tok in enumerate(pr)]
    last = []
    for i in range(0, len(items), N_BATCH):
        chunk = items[i:i + N_BATCH]
        decode(ctx, batch, chunk)
        last.append(logits(ctx, sum(1 for it in chunk if it[3]), m.vocab).argmax(axis=1))
    nxt = np.concatenate(last)
    first = [int(nxt[0])]
    for step in range(1, t):
        decode(ctx, batch, [(int(nxt[s]), len(prompts[s]) + step - 1, [s], True) for s in range(B)])
        nxt = logits(ctx, B, m.vocab).argmax(axis=1)
        first.append(int(nxt[0]))
    wall = time.perf_counter() - t0
    batch.free()
    L.llama_free(ctx)
    return wall, first


def decode_part(m: Model, cmd: dict) -> dict:
    prompts, t = cmd["prompts"], cmd["new_tokens"]
    greedy(m, prompts[:2], 4)  # warm-up
    watch = CpuWatch()
    wall, first = greedy(m, prompts, t)
    return {"wall_s": wall, "tokens": len(prompts) * t, "tokens_per_s": len(prompts) * t / wall, "other_cpu_load": watch.loads()[0],
            "first_row": first}


def main() -> None:
    L.llama_log_set(QUIET, ctypes.c_void_p(0))
    L.llama_backend_init()
    print(json.dumps({"ready": True, "llama_cpp_python": L.__version__, "threads": THREADS,
                      "system_info": L.llama_print_system_info().decode().strip()}), flush=True)
    m = None
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["part"] == "load":
            t0 = time.perf_counter()
            m = Model(cmd["gguf"])
            answer = {"wall_s": time.perf_counter() - t0}
        elif cmd["part"] == "workload":
            answer = workload(m, cmd)
        else:
            answer = decode_part(m, cmd)
        log(f"llama.cpp {cmd['part']}: {json.dumps(answer)}")
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
