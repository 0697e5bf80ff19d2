"""A Llama-style SentencePiece tokenizer trained on the demo data, for tests and benchmarks."""

from __future__ import annotations

import json
import pathlib

import sentencepiece as spm

from polyglot_jax.data import demo_build, sources


def llama_style_sentencepiece(folder: pathlib.Path, vocab_size: int = 1000) -> pathlib.Path:
    """Writes ``tokenizer.model`` and ``tokenizer_config.json`` to ``folder``; returns it.

    Like Llama's tokenizer: BPE with byte fallback and split digits, text never normalised,
    UNK 0, BOS 1, EOS 2, no pad; a ``LlamaTokenizer`` with ``legacy=False`` for
    ``transformers``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text(
        "\n".join(
            m["content"]
            for p in sorted(demo_build.DEMO_DIR.glob("train.*.jsonl"))
            for r in sources.read_jsonl(p)
            for m in r["messages"]
        )
    )
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "tokenizer"),
        model_type="bpe",
        vocab_size=vocab_size,
        character_coverage=1.0,
        byte_fallback=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "LlamaTokenizer", "legacy": False})
    )
    return folder
