"""Vocabularies: a SentencePiece model trained on the demo data, cached on disk.

The ids follow the SeqIO/T5X convention: pad 0, eos 1, unk 2, no bos; the decoder's input is
the target shifted right with pad (0) as the start token.
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib

import sentencepiece as spm
import seqio

from polyglot_jax.data import demo_build, sources

DEMO_VOCAB_SIZE = 1024


def cache_dir() -> pathlib.Path:
    """``$POLYGLOT_JAX_CACHE`` or ``~/.cache/polyglot_jax``."""
    root = os.environ.get("POLYGLOT_JAX_CACHE") or pathlib.Path.home() / ".cache" / "polyglot_jax"
    return pathlib.Path(root)


def _demo_sentences() -> list[str]:
    sentences = []
    for path in sorted(demo_build.DEMO_DIR.glob("*.jsonl")):
        for record in sources.read_jsonl(path):
            sentences.extend(m["content"] for m in record["messages"])
    return sentences


def train_sentencepiece(
    sentences: list[str], vocab_size: int, path: pathlib.Path, extra_symbols: tuple[str, ...] = ()
) -> pathlib.Path:
    """Trains a unigram SentencePiece model and writes it atomically to ``path``.

    Args:
      sentences: training text, one sentence per item.
      vocab_size: the upper bound of the vocabulary size (smaller corpora give fewer pieces).
      path: where the ``.model`` file goes.
      extra_symbols: strings always kept whole (template markers such as ``###``).
    """
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        user_defined_symbols=list(extra_symbols),
        byte_fallback=True,
        split_digits=True,
        num_threads=1,
        minloglevel=2,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(model.getvalue())
    tmp.replace(path)
    return path


def demo_vocabulary() -> seqio.SentencePieceVocabulary:
    """The demo SentencePiece vocabulary, trained on first use and cached by content hash."""
    sentences = _demo_sentences()
    key = hashlib.sha256("\n".join([str(DEMO_VOCAB_SIZE), *sentences]).encode("utf-8")).hexdigest()[
        :12
    ]
    path = cache_dir() / f"demo_spm_{key}.model"
    if not path.exists():
        train_sentencepiece(sentences, DEMO_VOCAB_SIZE, path, extra_symbols=("###",))
    return seqio.SentencePieceVocabulary(str(path))
