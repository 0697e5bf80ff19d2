"""SeqIO preprocessors and the feature converter for chat fine-tuning.

Pipeline per task: ``render_chat`` (template, per-segment target flag) → ``tokenize_segments``
(ids and a per-token loss mask) → :class:`ChatFeatureConverter` (pack to a fixed length with
segment ids and positions; the decoder input is the target shifted right within each segment).

The decoder input follows the tokenizer. SeqIO vocabularies (the demo) start it with id 0 before
the first target. A Hugging Face tokenizer's sequence starts with its BOS when it adds one (or
with the template's first token) as a real token of the sequence: marked :data:`START` in the
mask, it is the decoder's first input and is never predicted, as in ``transformers`` training.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import gin
import numpy as np
import seqio
import tensorflow as tf

from polyglot_jax.data import packing, templates
from polyglot_jax.errors import ConfigError

CONTEXT = 1  # loss_mask value of a token that is not trained on
TARGET = 2  # loss_mask value of a trained token
START = 3  # loss_mask value of a sequence's first token that is only the decoder's first input


def _render_numpy(
    vocabulary: seqio.Vocabulary | None, roles: np.ndarray, contents: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    messages = [
        {"role": r.decode("utf-8"), "content": c.decode("utf-8")}
        for r, c in zip(roles, contents, strict=True)
    ]
    segments = templates.render(messages, vocabulary=vocabulary)
    texts = np.array([t.encode("utf-8") for t, _ in segments], dtype=object)
    flags = np.array([int(target) for _, target in segments], dtype=np.int32)
    return texts, flags


def render_chat(
    dataset: tf.data.Dataset, output_features: Mapping[str, seqio.Feature] | None = None
) -> tf.data.Dataset:
    """``roles``/``contents`` → ``segments`` (strings) and ``segment_targets`` (0/1).

    The template and loss selection come from gin (``templates.render.template`` and
    ``templates.render.loss_on``) at the time the dataset is built; the ``targets``
    vocabulary supplies the ``"tokenizer"`` template.
    """
    vocabulary = output_features["targets"].vocabulary if output_features else None
    render = functools.partial(_render_numpy, vocabulary)

    def fn(ex: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        texts, flags = tf.numpy_function(
            render, [ex["roles"], ex["contents"]], [tf.string, tf.int32], stateful=False
        )
        texts.set_shape([None])
        flags.set_shape([None])
        return {"id": ex["id"], "lang": ex["lang"], "segments": texts, "segment_targets": flags}

    return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def tokenize_segments(
    dataset: tf.data.Dataset, output_features: Mapping[str, seqio.Feature]
) -> tf.data.Dataset:
    """Tokenizes each segment and builds ``targets`` and a matching ``loss_mask``.

    ``loss_mask`` is :data:`TARGET` (2) on trained tokens and :data:`CONTEXT` (1) elsewhere: SeqIO's
    packer treats 0 as padding and drops it, so a mask needs nonzero values to survive packing.
    With a built-in template the tokenizer's BOS (when it adds one) comes first, and EOS is
    appended (when the ``targets`` feature adds EOS), a target exactly when the last segment is
    one, so the model learns to stop after a response. The ``"tokenizer"`` template's text is
    tokenized whole and ends with the template's own end-of-turn token. A Hugging Face
    tokenizer's first token is marked :data:`START`.
    """
    feature = output_features["targets"]
    vocabulary, add_eos = feature.vocabulary, feature.add_eos
    info = getattr(vocabulary, "info", None)
    whole_text = templates.chat_format()[0] == templates.TOKENIZER
    bos = None if info is None else info.bos_id
    mark_start = info is not None and info.decoder_start_id is None

    def encode_whole(texts: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        segments = [(t.decode("utf-8"), bool(f)) for t, f in zip(texts, flags, strict=True)]
        ids, targets = templates.encode(vocabulary, segments, templates.TOKENIZER)
        return np.array(ids, np.int32), np.array(targets, np.int32) + CONTEXT

    def fn(ex: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        if whole_text:
            targets, mask = tf.numpy_function(
                encode_whole,
                [ex["segments"], ex["segment_targets"]],
                [tf.int32, tf.int32],
                stateful=False,
            )
            targets.set_shape([None])
            mask.set_shape([None])
        else:
            pieces = vocabulary.encode_tf(ex["segments"])  # ragged [segments, tokens]
            targets = tf.cast(pieces.flat_values, tf.int32)
            flags = ex["segment_targets"] + CONTEXT
            mask = tf.repeat(flags, pieces.row_lengths())
            if bos is not None:
                targets = tf.concat([[bos], targets], axis=0)
                mask = tf.concat([[CONTEXT], mask], axis=0)
            if add_eos:
                targets = tf.concat([targets, [vocabulary.eos_id]], axis=0)
                mask = tf.concat([mask, flags[-1:]], axis=0)
        if mark_start:
            mask = tf.concat([tf.fill(tf.shape(mask[:1]), START), mask[1:]], axis=0)
        return {"id": ex["id"], "lang": ex["lang"], "targets": targets, "loss_mask": mask}

    return dataset.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


@gin.configurable(denylist=["dataset"])
def cache_in_memory(dataset: tf.data.Dataset, max_examples: int = 200_000) -> tf.data.Dataset:
    """Keeps tokenized examples in memory after the first epoch, for datasets of known size.

    Rendering and tokenizing then happen once per run instead of once per epoch; datasets of
    unknown or larger size stream as before.
    """
    size = int(dataset.cardinality())
    return dataset.cache() if 0 <= size <= max_examples else dataset


@gin.configurable
class ChatFeatureConverter(seqio.FeatureConverter):
    """Packs ``targets`` with their ``loss_mask`` for a decoder-only model.

    ``packer="best_fit"`` packs windows of ``window`` examples best-fit decreasing
    (:mod:`packing`); ``"seqio"`` uses SeqIO's greedy ``trim_and_pack``. Examples longer than
    the target length are truncated (``overlong="truncate"``) or dropped (``"drop"``);
    ``polyglot-jax data describe`` counts them per language.

    Model features, each ``[batch, length]``:
      decoder_target_tokens: the token to predict at each position.
      decoder_input_tokens: the previous token of the example at each position; an example
        starts with the converter's ``bos_id`` (0, SeqIO) or, when its first token is marked
        :data:`START`, with that token (which is then no target).
      decoder_loss_weights: 1 where the target token is trained on, else 0.
      decoder_segment_ids: 1, 2, ... per packed example; 0 is padding (packed only).
      decoder_positions: position within the example (packed only).
    """

    TASK_FEATURES = {  # noqa: RUF012 (seqio's class attribute protocol)
        "targets": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
        "loss_mask": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
    }
    MODEL_FEATURES = {  # noqa: RUF012
        "decoder_target_tokens": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
        "decoder_input_tokens": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
        "decoder_loss_weights": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
    }
    PACKING_FEATURE_DTYPES = {  # noqa: RUF012
        "decoder_segment_ids": tf.int32,
        "decoder_positions": tf.int32,
    }

    def __init__(
        self,
        pack: bool = True,
        packer: str = "best_fit",
        window: int = 1024,
        overlong: str = "truncate",
        **kwargs: object,
    ) -> None:
        if packer not in ("best_fit", "seqio"):
            raise ConfigError(f"ChatFeatureConverter.packer: best_fit or seqio, not {packer!r}")
        if overlong not in ("truncate", "drop"):
            raise ConfigError(f"ChatFeatureConverter.overlong: truncate or drop, not {overlong!r}")
        self.packer, self.window, self.overlong = packer, window, overlong
        super().__init__(pack=pack, **kwargs)

    def __call__(
        self, ds: tf.data.Dataset, task_feature_lengths: Mapping[str, int]
    ) -> tf.data.Dataset:
        """Converts ``ds``; ``loss_mask`` takes the length of ``targets`` unless given."""
        length = task_feature_lengths["targets"]
        lengths = {"loss_mask": length, **task_feature_lengths}
        ds = ds.map(self._shift).filter(lambda ex: tf.size(ex["targets"]) > 0)
        if self.overlong == "drop":
            ds = ds.filter(lambda ex: tf.size(ex["targets"]) <= length)
        ds = ds.map(
            lambda ex: {
                **ex,
                "targets": ex["targets"][:length],
                "inputs": ex["inputs"][:length],
                "loss_mask": ex["loss_mask"][:length],
            }
        )
        return super().__call__(ds, lengths)

    def _shift(self, ex: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Adds ``inputs`` (``[tokens]``): the decoder input of each target, per example."""
        targets, mask = ex["targets"], ex["loss_mask"]
        start = tf.cast(tf.reduce_any(tf.equal(mask[:1], START)), tf.int32)  # 1: input only
        begin = tf.fill(tf.reshape(1 - start, [1]), tf.constant(self.bos_id, tf.int32))
        inputs = tf.concat([begin, targets[:-1]], axis=0)
        return {**ex, "inputs": inputs, "targets": targets[start:], "loss_mask": mask[start:]}

    def _convert_features(
        self, ds: tf.data.Dataset, task_feature_lengths: Mapping[str, int]
    ) -> tf.data.Dataset:
        length = task_feature_lengths["targets"]
        lengths = {"targets": length, "inputs": length, "loss_mask": length}
        if self.pack and self.packer == "best_fit":
            ds = packing.best_fit_pack_dataset(ds, lengths, self.window)
        else:
            ds = self._pack_or_pad(ds, lengths)

        def fn(ex: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            segment_ids = ex.get("targets_segment_ids")
            out = {
                "decoder_target_tokens": ex["targets"],
                "decoder_input_tokens": ex["inputs"],
                "decoder_loss_weights": tf.cast(tf.equal(ex["loss_mask"], TARGET), tf.int32),
            }
            if self.pack:
                out["decoder_segment_ids"] = segment_ids
                out["decoder_positions"] = ex["targets_positions"]
            return out

        return ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE)

    def get_model_feature_lengths(self, task_feature_lengths: Mapping[str, int]) -> dict[str, int]:
        length = task_feature_lengths["targets"]
        lengths = {k: length for k in self.MODEL_FEATURES}
        if self.pack:
            lengths.update({k: length for k in self.PACKING_FEATURE_DTYPES})
        return lengths
