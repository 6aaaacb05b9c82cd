"""Reference token ids and chat renderings of SmolLM2-135M-Instruct, for test/engine/hf-tokenizer.test.ts and
test/rise/chat-template.test.ts (fixture: test/fixtures/smollm2-tokenizer.json).

The tokenizer is loaded from the GGUF file by transformers (its own GGUF conversion, independent of ours):

    bench/.venv/bin/pip install transformers==5.24.0 tokenizers==0.23.3 gguf==0.19.0 jinja2==3.1.6
    bench/.venv/bin/python scripts/reference/tokenizer_reference.py [GGUF]   (default: the file `rise model pull smollm2-135m-instruct` keeps in the model store (sources/))

(versions used: transformers 5.24.0, tokenizers 0.23.3, gguf 0.19.0, jinja2 3.1.6, Python 3; no sentencepiece).

One correction: transformers' GGUF conversion ignores `tokenizer.ggml.pre = "smollm"` and pre-tokenizes
with plain GPT-2 ByteLevel, while SmolLM2's own tokenizer.json (and llama.cpp) isolate every Unicode number
character first (`Digits(individual_digits=True)`, Unicode-aware in Rust). The two agree wherever the
merges hold no merge across numerals, i.e. on everything but runs of non-ASCII numerals ("²³", "٣٤٥").
The expected ids are therefore those of the converted vocabulary and merges under SmolLM2's own
pre-tokenizer (Rust tokenizers); the script asserts they equal transformers' ids on every other entry and
records transformers' ids where they differ (`transformersGgufIds`).
"""

import json
import os
import sys

from tokenizers import Tokenizer, pre_tokenizers
from transformers import AutoTokenizer

CORPUS = [
    "Hello, world!",
    "def add(a, b):\n    return a + b\n\n\tif x:\n\t\tpass\n",
    "Café, naïve, résumé, Ångström, façade",
    "東京は日本の首都です。中文测试",
    "12345 and 3.14159 and -0.5e10, 1,000,000",
    "Emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?\n#### 72",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
    "text<|im_end|>more<|endoftext|>",
    "   leading and trailing spaces   ",
    "\n\nnewlines\n\n\nand\r\nCRLF\n",
    "x² + y³ = ½ and ٣٤٥ and ²³",
    "",
    " ",
    "The answer is $\\boxed{42}$.",
]

CONVERSATIONS = [
    {
        "messages": [
            {"role": "user", "content": "Start with 2, plus 3."},
            {"role": "assistant", "content": "2+3=6\n#### 6"},
            {"role": "user", "content": "The answer is incorrect. Please try again.\nStart with 2, plus 3."},
        ],
        "addGenerationPrompt": True,
    },
    {
        "messages": [
            {"role": "system", "content": "Answer after ####."},
            {"role": "user", "content": "What is 7 times 8?"},
            {"role": "assistant", "content": "7*8 = 56\n#### 56"},
        ],
        "addGenerationPrompt": False,
    },
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Natalia sold 48 clips in April and half as many in May. How many in total?"},
        ],
        "addGenerationPrompt": True,
    },
]


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.environ.get("RISE_MODELS") or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rise", "models"), "sources", "b179c9523d0e6a0f-SmolLM2-135M-Instruct.Q4_1.gguf")
    tok = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    own = Tokenizer.from_str(tok.backend_tokenizer.to_str())
    own.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)]
    )

    corpus = []
    for text in CORPUS:
        ids = own.encode(text, add_special_tokens=False).ids
        converted = tok.encode(text, add_special_tokens=False)
        entry = {"text": text, "ids": ids}
        if converted != ids:
            assert any(ch.isnumeric() and not ch.isascii() for ch in text), f"unexpected divergence on {text!r}"
            entry["transformersGgufIds"] = converted
        assert tok.decode(ids, clean_up_tokenization_spaces=False) == text, f"decode does not round-trip {text!r}"
        corpus.append(entry)

    chats = []
    for conv in CONVERSATIONS:
        text = tok.apply_chat_template(conv["messages"], tokenize=False, add_generation_prompt=conv["addGenerationPrompt"])
        ids = tok.apply_chat_template(conv["messages"], tokenize=True, add_generation_prompt=conv["addGenerationPrompt"])
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        chats.append({**conv, "text": text, "ids": list(ids)})

    fixture = {
        "source": "scripts/reference/tokenizer_reference.py",
        "model": os.path.basename(path),
        "transformers": __import__("transformers").__version__,
        "tokenizers": __import__("tokenizers").__version__,
        "special": {"bos": tok.bos_token, "eos": tok.eos_token, "pad": tok.pad_token},
        "corpus": corpus,
        "chats": chats,
    }
    out = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "smollm2-tokenizer.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {os.path.normpath(out)}: {len(corpus)} texts, {len(chats)} chats")


if __name__ == "__main__":
    main()
