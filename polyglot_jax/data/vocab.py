"""Vocabularies: SentencePiece (trained on the demo data, or a model's ``tokenizer.model``) and
Hugging Face ``tokenizers`` files, all as SeqIO vocabularies.

The demo model follows the SeqIO/T5X convention: pad 0, eos 1, unk 2, no bos; the decoder's
input is the target shifted right with pad (0) as the start token. A Hugging Face model's
tokenizer keeps its own framing (:class:`TokenizerInfo`): its BOS (when it adds one) begins every
sequence and is the decoder's first input, and its chat template and special tokens are kept for
rendering conversations exactly as ``transformers`` does.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import re
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import sentencepiece as spm
import seqio
import tensorflow as tf
from sentencepiece import sentencepiece_model_pb2

from polyglot_jax.data import demo_build, sources, tokenizer_files
from polyglot_jax.data.tokenizer_files import TokenizerInfo
from polyglot_jax.errors import DataError, MissingFileError

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


def _split_special(text: str, special: Mapping[str, int]) -> Iterator[tuple[int, str, int | None]]:
    """``(start, piece, id)`` over ``text``: special tokens with their id, text with None."""
    if not special:
        yield 0, text, None
        return
    pattern = "|".join(re.escape(t) for t in sorted(special, key=len, reverse=True))
    at = 0
    for match in re.finditer(pattern, text):
        if match.start() > at:
            yield at, text[at : match.start()], None
        yield match.start(), match.group(), special[match.group()]
        at = match.end()
    if at < len(text):
        yield at, text[at:], None


class SentencePieceVocabulary(seqio.SentencePieceVocabulary):
    """A SentencePiece model (``tokenizer.model``) with its tokenizer's framing.

    Args:
      sentencepiece_model_file: path to the ``.model`` file.
      info: BOS, padding, special tokens and chat template; SeqIO's convention by default.
    """

    def __init__(self, sentencepiece_model_file: str, info: TokenizerInfo | None = None) -> None:
        self.info = info or TokenizerInfo()
        self._no_prefix: spm.SentencePieceProcessor | None = None
        super().__init__(sentencepiece_model_file)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_no_prefix", None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._no_prefix = None

    @property
    def bos_id(self) -> int | None:
        return self.info.bos_id

    @property
    def pad_id(self) -> int:
        return self.info.pad_id

    def _tokenizer_without_prefix(self) -> spm.SentencePieceProcessor:
        if self._no_prefix is None:
            proto = sentencepiece_model_pb2.ModelProto()
            proto.ParseFromString(self.sp_model)
            proto.normalizer_spec.add_dummy_prefix = False
            self._no_prefix = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
        return self._no_prefix

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of ``text`` with special tokens matched whole, as ``transformers`` encodes it.

        Returns:
          ids and, per id, the ``(start, end)`` characters of ``text`` it came from (empty for
          the dummy prefix and for all but the last byte of a byte-fallback character).
        """
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        scheme = self.info.prefix_space
        for start, piece, special_id in _split_special(text, dict(self.info.special_tokens)):
            if special_id is not None:
                ids.append(special_id)
                offsets.append((start, start + len(piece)))
                continue
            prefixed = scheme == "always" or (scheme == "first" and start == 0)
            processor = self.tokenizer if prefixed else self._tokenizer_without_prefix()
            chars = [i for i, ch in enumerate(piece) for _ in ch.encode("utf-8")] + [len(piece)]
            for p in processor.encode(piece, return_type="proto").pieces:
                ids.append(p.id)
                offsets.append((start + chars[p.begin], start + chars[p.end]))
        return ids, offsets


def demo_vocabulary() -> SentencePieceVocabulary:
    """The demo SentencePiece vocabulary, trained on first use and cached by content hash."""
    sentences = _demo_sentences()
    key = hashlib.sha256("\n".join([str(DEMO_VOCAB_SIZE), *sentences]).encode("utf-8")).hexdigest()[
        :12
    ]
    path = cache_dir() / f"demo_spm_{key}.model"
    if not path.exists():
        train_sentencepiece(sentences, DEMO_VOCAB_SIZE, path, extra_symbols=("###",))
    return SentencePieceVocabulary(str(path))


class HFTokenizerVocabulary(seqio.Vocabulary):
    """A Hugging Face ``tokenizers`` tokenizer (``tokenizer.json``) as a SeqIO vocabulary.

    Falcon, BLOOM and Pythia ship byte-level BPE tokenizers in this format. Encoding adds no
    special tokens (the chat template and SeqIO add what a task needs); ``encode_tf`` accepts a
    scalar or a vector of strings (returning a ``RaggedTensor`` for a vector).

    Args:
      tokenizer_file: path to ``tokenizer.json``.
      eos_token: the end-of-sequence token's text.
      unk_token: the unknown token's text, if the tokenizer has one.
      info: BOS, padding and chat template (SeqIO's convention by default).
    """

    def __init__(
        self,
        tokenizer_file: str | pathlib.Path,
        eos_token: str,
        unk_token: str | None = None,
        info: TokenizerInfo | None = None,
    ) -> None:
        import tokenizers

        self.tokenizer_file = str(tokenizer_file)
        self.tokenizer = tokenizers.Tokenizer.from_file(self.tokenizer_file)
        self._eos = self.tokenizer.token_to_id(eos_token)
        if self._eos is None:
            raise DataError(f"{tokenizer_file}: eos token {eos_token!r} is not in the vocabulary")
        self._unk = self.tokenizer.token_to_id(unk_token) if unk_token else None
        self.info = info or TokenizerInfo()
        super().__init__(extra_ids=0)

    @property
    def eos_id(self) -> int:
        return self._eos

    @property
    def bos_id(self) -> int | None:
        return self.info.bos_id

    @property
    def pad_id(self) -> int:
        return self.info.pad_id

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of ``text`` (added tokens matched whole) and each id's ``(start, end)`` chars."""
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        return list(encoding.ids), [tuple(o) for o in encoding.offsets]

    @property
    def unk_id(self) -> int | None:
        return self._unk

    @property
    def _base_vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def _encode(self, s: str) -> list[int]:
        return self.tokenizer.encode(s, add_special_tokens=False).ids

    def _decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def _encode_many(self, strings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        encoded = [self._encode(s.decode("utf-8")) for s in strings.reshape(-1)]
        flat = np.array([i for ids in encoded for i in ids], dtype=np.int32)
        return flat, np.array([len(ids) for ids in encoded], dtype=np.int64)

    def _encode_tf(self, s: tf.Tensor) -> tf.Tensor:
        flat, lengths = tf.numpy_function(self._encode_many, [s], [tf.int32, tf.int64])
        flat.set_shape([None])
        if s.shape.rank == 0:
            return flat
        return tf.RaggedTensor.from_row_lengths(flat, tf.reshape(lengths, [-1]))

    def _decode_tf(self, ids: tf.Tensor) -> tf.Tensor:
        def decode(batch: np.ndarray) -> np.ndarray:
            rows = batch.reshape(-1, batch.shape[-1]) if batch.ndim else batch.reshape(1, 1)
            return np.array([self._decode(r.tolist()).encode("utf-8") for r in rows], dtype=object)

        out = tf.numpy_function(decode, [ids], tf.string)
        return tf.reshape(out, tf.shape(ids)[:-1])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HFTokenizerVocabulary) and (
            other.tokenizer_file == self.tokenizer_file
            and other.eos_id == self.eos_id
            and other.info == self.info
        )

    def __hash__(self) -> int:
        return hash((self.tokenizer_file, self.eos_id))


# The files of a Hugging Face tokenizer that :func:`load_vocabulary` may read.
TOKENIZER_FILES = (
    "tokenizer.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
)


def source_folder(vocabulary: seqio.Vocabulary) -> pathlib.Path | None:
    """The Hugging Face folder :func:`load_vocabulary` read ``vocabulary`` from, else None."""
    if isinstance(vocabulary, HFTokenizerVocabulary):
        return pathlib.Path(vocabulary.tokenizer_file).parent
    if isinstance(vocabulary, SentencePieceVocabulary):
        model_file = pathlib.Path(vocabulary.sentencepiece_model_file)
        return model_file.parent if model_file.name == "tokenizer.model" else None
    return None


def load_vocabulary(model_dir: str | pathlib.Path) -> seqio.Vocabulary:
    """The tokenizer of a Hugging Face model directory as a SeqIO vocabulary.

    ``tokenizer.model`` (SentencePiece: Llama 2, PaLM-style) is preferred; otherwise
    ``tokenizer.json`` (``tokenizers``: Falcon, BLOOM, Pythia, Qwen2) with the EOS token from
    ``tokenizer_config.json``. BOS, padding, special tokens and the chat template follow the
    tokenizer's files (:mod:`tokenizer_files`); the sequence's first token is the decoder's
    first input (no SeqIO start id).
    """
    model_dir = pathlib.Path(model_dir)
    config_path = model_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    if (model_dir / "tokenizer.model").exists():
        path = str(model_dir / "tokenizer.model")
        sp = spm.SentencePieceProcessor(model_file=path)
        return SentencePieceVocabulary(
            path, tokenizer_files.sentencepiece_info(model_dir, config, sp)
        )
    if not (model_dir / "tokenizer.json").exists():
        raise MissingFileError(f"no tokenizer.model or tokenizer.json in {model_dir}")
    eos = tokenizer_files.token_text(config, "eos_token")
    if eos is None:
        raise DataError(f"{config_path}: no eos_token; the vocabulary needs one to stop")
    unk = tokenizer_files.token_text(config, "unk_token")
    plain = HFTokenizerVocabulary(model_dir / "tokenizer.json", eos, unk)
    info = tokenizer_files.tokenizers_info(model_dir, config, plain.tokenizer)
    return HFTokenizerVocabulary(model_dir / "tokenizer.json", eos, unk, info)
