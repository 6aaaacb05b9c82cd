#!/usr/bin/env python3
"""Tiny random Llama and Qwen2 checkpoints, a GGUF copy of the Llama, and transformers' logits for both.

Why: src/models reads Hugging Face checkpoints and GGUF files into the engine's layout with its own code;
these fixtures let the tests check it against implementations that share none of it:
  - transformers' LlamaForCausalLM / Qwen2ForCausalLM (float32, CPU, eval) give the reference logits the
    engine's forward pass over the imported weights must reproduce;
  - the GGUF copy is written with the `gguf` package the way llama.cpp's converter writes a Llama (names
    mapped, q/k rows permuted to interleaved rotary pairs, F32), so importing it must give exactly the
    parameters the Hugging Face directory gives.

Writes test/fixtures/tiny-llama/{config.json, model.safetensors, model.gguf, logits.json} (F32, untied head)
and test/fixtures/tiny-qwen2/{config.json, model.safetensors, logits.json} (F16 weights, tied embeddings,
q/k/v biases). logits.json: {tokens: [[...]], logits: [[[...V floats] per position] per row]}.

Regenerate:
  bench/.venv/bin/python scripts/reference/tiny_models.py
Generated with torch 2.15.0 (CPU), transformers 5.24.0, gguf 0.19.0, safetensors 0.8.0, numpy 2.4.6.
"""
import json
import os

import gguf
import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../test/fixtures')
SHAPE = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5)
TOKENS = [[1, 17, 5, 63, 42, 8, 30, 2, 11], [0, 3, 3, 60, 21, 9, 50, 44, 7]]


def randomize(model, seed):
    """Weights far from the default init (norm gains too), so a misplaced tensor changes the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.dim() == 2 else 0.5) + (1.0 if p.dim() == 1 and p.shape[0] == SHAPE['hidden_size'] else 0.0))


def write_logits(model, out_dir):
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor(TOKENS)).logits.float()
    with open(os.path.join(out_dir, 'logits.json'), 'w') as f:
        json.dump({'tokens': TOKENS, 'logits': np.round(logits.numpy().astype(np.float64), 6).tolist()}, f)


def llama_permute(w, heads):
    """llama.cpp's converter: rows per head from (2, hd/2) "rotate half" halves to (hd/2, 2) pairs."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model, config, path):
    writer = gguf.GGUFWriter(path, 'llama')
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(config.rope_parameters['rope_theta'])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    names = {'input_layernorm': 'attn_norm', 'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k',
             'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output', 'post_attention_layernorm': 'ffn_norm',
             'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down'}
    for name, tensor in model.state_dict().items():
        w = tensor.float().numpy()
        if name == 'model.embed_tokens.weight':
            gname = 'token_embd.weight'
        elif name == 'model.norm.weight':
            gname = 'output_norm.weight'
        elif name == 'lm_head.weight':
            gname = 'output.weight'
        else:
            _, _, layer, rest = name.split('.', 3)
            module, kind = rest.rsplit('.', 1)
            gname = f'blk.{layer}.{names[module]}.{kind}'
            if module == 'self_attn.q_proj':
                w = llama_permute(w, config.num_attention_heads)
            elif module == 'self_attn.k_proj':
                w = llama_permute(w, config.num_key_value_heads)
        writer.add_tensor(gname, np.ascontiguousarray(w, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    torch.manual_seed(0)
    llama_dir = os.path.join(ROOT, 'tiny-llama')
    config = LlamaConfig(**SHAPE, tie_word_embeddings=False, rope_theta=10000.0)
    llama = LlamaForCausalLM(config)
    randomize(llama, 1)
    llama.save_pretrained(llama_dir)
    write_gguf(llama, config, os.path.join(llama_dir, 'model.gguf'))
    write_logits(llama, llama_dir)

    qwen_dir = os.path.join(ROOT, 'tiny-qwen2')
    qconfig = Qwen2Config(**SHAPE, tie_word_embeddings=True, rope_theta=1000.0)
    qwen = Qwen2ForCausalLM(qconfig)
    randomize(qwen, 2)
    # Stored as F16; the reference runs in float32 on exactly the F16-rounded weights, reloaded so that
    # no buffer (the rotary frequencies) keeps the rounding that .half() gave it.
    qwen.half().save_pretrained(qwen_dir)
    write_logits(Qwen2ForCausalLM.from_pretrained(qwen_dir, dtype=torch.float32), qwen_dir)


if __name__ == '__main__':
    main()
