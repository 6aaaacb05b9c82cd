#!/usr/bin/env python3
"""Checks a PEFT adapter written by `rise model export` against rise's own merge of it.

Why: rise writes LoRA adapters in PEFT's format with its own code (src/models/peft.ts: names, transposes,
alpha/rank scaling). This loads them the way users will -- transformers' AutoModelForCausalLM for the base,
peft's PeftModel.from_pretrained on top, float32, CPU, eval -- and compares the logits with rise's merged
export of the same checkpoint (`--merged`, the weights rise samples with: mergeLora). A name PEFT does not
recognise, a missing transpose or a wrong scale shows as a difference of the size of the adapter's effect,
which the script prints beside it.

Usage (the venv comes from bench/torch/setup.sh; peft as pinned below):
  rise model export BASE --out base/                    # the stored base model, as a Hugging Face directory
  rise model export CHECKPOINT --out adapter/           # the LoRA checkpoint, as a PEFT adapter
  rise model export CHECKPOINT --out merged/ --merged   # the same checkpoint, merged by rise
  bench/.venv/bin/python scripts/reference/peft_check.py --base base/ --peft adapter/ --merged merged/ [--prompt TEXT]
Prints max |logits(base + PEFT adapter) - logits(rise merged)| and max |logits(base + adapter) - logits(base)|;
exits 1 when an adapter tensor was not loaded, or the difference exceeds --tolerance (relative to the
largest logit).
Written against Python 3.11.7, torch 2.15.0 (CPU), transformers 5.24.0, peft 0.21.2, safetensors 0.8.0.
"""
import argparse
import os
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer


def load(path):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    return model.eval()


def prompt_ids(merged_dir, prompt):
    """The prompt through the exported tokenizer and its chat template, so those files are checked too."""
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    if tokenizer.chat_template:
        ids = tokenizer.apply_chat_template([{'role': 'user', 'content': prompt}], add_generation_prompt=True, tokenize=True)
        ids = ids['input_ids'] if isinstance(ids, dict) or hasattr(ids, 'keys') else ids
    else:
        ids = tokenizer(prompt)['input_ids']
    return torch.tensor([list(ids)])


def check_adapter_loaded(model, peft_dir):
    """Every tensor of adapter_model.safetensors must sit, unchanged, in the PEFT model (adapter "default")."""
    state = model.state_dict()
    missing = []
    for name, tensor in load_file(os.path.join(peft_dir, 'adapter_model.safetensors')).items():
        loaded = state.get(name.replace('.weight', '.default.weight'))
        if loaded is None or not torch.equal(loaded, tensor):
            missing.append(name)
    return missing


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--base', required=True, help='the base model as a Hugging Face directory')
    parser.add_argument('--peft', required=True, help='the PEFT adapter directory rise exported')
    parser.add_argument('--merged', required=True, help='the same checkpoint exported by rise with --merged')
    parser.add_argument('--prompt', default='What is 12 + 30?')
    parser.add_argument('--tolerance', type=float, default=1e-5)
    args = parser.parse_args()

    torch.manual_seed(0)
    tokens = prompt_ids(args.merged, args.prompt)
    with torch.no_grad():
        base_logits = load(args.base)(tokens).logits
        adapted = PeftModel.from_pretrained(load(args.base), args.peft).eval()
        missing = check_adapter_loaded(adapted, args.peft)
        peft_logits = adapted(tokens).logits
        ours = load(args.merged)(tokens).logits

    diff = (peft_logits - ours).abs().max().item()
    effect = (peft_logits - base_logits).abs().max().item()
    scale = ours.abs().max().item()
    print(f'tokens: {tokens.shape[1]}  largest |logit|: {scale:.6g}')
    print(f'max |logits(base + PEFT adapter) - logits(rise merged)| = {diff:.3e}')
    print(f'max |logits(base + PEFT adapter) - logits(base)|        = {effect:.3e}  (the adapter\'s effect)')
    if missing:
        print(f'adapter tensors PEFT did not load as written: {missing}', file=sys.stderr)
        sys.exit(1)
    if diff > args.tolerance * max(1.0, scale):
        print(f'difference exceeds the tolerance {args.tolerance} (relative)', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
