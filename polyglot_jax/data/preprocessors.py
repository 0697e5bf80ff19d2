"""SeqIO preprocessors and the feature converter for chat fine-tuning.

Pipeline per task: :class:`EncodeChat` (one Python step per example, called on a batch of
them: render the chat template and tokenize its segments into ids and a per-token loss mask) →
:func:`cache_in_memory` → :class:`ChatFeatureConverter` (in TensorFlow: pack to a fixed length
with segment ids and positions; the decoder input is the target shifted right within each
segment).

The chat format (template and loss selection, :class:`templates.ChatFormat`) is given to
:class:`EncodeChat` when the task is built; a task built without one (the demo and study tasks,
registered before gin is parsed) follows the run's format, resolved by
:func:`templates.chat_format` once, when its dataset is built.

The decoder input follows the tokenizer. SeqIO vocabularies (the demo) start it with id 0 before
the first target. A Hugging Face tokenizer's sequence starts with its BOS when it adds one (or
with the template's first token) as a real token of the sequence: marked :data:`START` in the
mask, it is the decoder's first input and is never predicted, as in ``transformers`` training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import gin
import numpy as np
import seqio
import tensorflow as tf

from polyglot_jax.data import packing, templates
from polyglot_jax.errors import ConfigError

CONTEXT = 1  # loss_mask value of a token that is not trained on
TARGET = 2  # loss_mask value of a trained token
START = 3  # loss_mask value of a sequence's first token that is only the decoder's first input


def encode_conversation(
    vocabulary: seqio.Vocabulary,
    chat_format: templates.ChatFormat,
    messages: Sequence[Mapping[str, str]],
    add_eos: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """One conversation's token ids and loss mask, rendered and tokenized in one step.

    ``loss_mask`` is :data:`TARGET` (2) on trained tokens and :data:`CONTEXT` (1) elsewhere: SeqIO's
    packer treats 0 as padding and drops it, so a mask needs nonzero values to survive packing.
    With a built-in template each segment is tokenized on its own after the tokenizer's BOS (when
    it adds one), and EOS is appended (``add_eos``), a target exactly when the last segment is
    one, so the model learns to stop after a response. The ``"tokenizer"`` template's text is
    tokenized whole and ends with the template's own end-of-turn token. A Hugging Face
    tokenizer's first token (``decoder_start_id`` None) is marked :data:`START`.

    Args:
      vocabulary: the ``targets`` vocabulary (its ``info``, when it has one, gives BOS and
        the chat template).
      chat_format: template and loss selection.
      messages: ``[{"role", "content"}, ...]``.
      add_eos: append EOS after a built-in template's text.

    Returns:
      ids ``[tokens]`` and loss mask ``[tokens]``, both int32.
    """
    template, loss_on = chat_format
    segments = templates.render(list(messages), template, loss_on, vocabulary=vocabulary)
    ids, targets = templates.encode(vocabulary, segments, template)
    mask = [TARGET if t else CONTEXT for t in targets]
    if add_eos and template != templates.TOKENIZER:
        ids.append(vocabulary.eos_id)
        mask.append(TARGET if segments and segments[-1][1] else CONTEXT)
    info = getattr(vocabulary, "info", None)
    if mask and info is not None and info.decoder_start_id is None:
        mask[0] = START
    return np.array(ids, np.int32), np.array(mask, np.int32)


@dataclasses.dataclass(frozen=True)
class EncodeChat:
    """Preprocessor: ``roles``/``contents`` → ``targets`` and ``loss_mask`` (``[tokens]`` each).

    Renders and tokenizes conversations in Python (:func:`encode_conversation`), ``batch`` at a
    time in one call (the order, ``id`` and ``lang`` are kept), then continues in TensorFlow.

    Attributes:
      chat_format: the template and loss selection; None: the run's, resolved when the dataset
        is built by :func:`templates.chat_format` (gin ``chat_format.template`` and
        ``chat_format.loss_on``, which ``runs/finetune.gin`` binds to ``CHAT_TEMPLATE`` and
        ``LOSS_ON``).
      batch: conversations per Python call.
      output_features: the task's features (set by SeqIO); ``targets`` gives the vocabulary
        and whether EOS is added. A vocabulary with a ``resolved`` property
        (:class:`~polyglot_jax.data.study_data.LazyVocabulary`) is resolved then too.
    """

    chat_format: templates.ChatFormat | None = None
    batch: int = 64
    output_features: Mapping[str, seqio.Feature] | None = None

    def __call__(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        if self.output_features is None:
            raise ConfigError("EncodeChat needs the task's output_features (SeqIO sets them)")
        feature = self.output_features["targets"]
        vocabulary = getattr(feature.vocabulary, "resolved", feature.vocabulary)
        chat_format = self.chat_format or templates.chat_format()
        add_eos = feature.add_eos

        def encode(
            turns: np.ndarray, roles: np.ndarray, contents: np.ndarray
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            """``turns`` ``[batch]`` messages per conversation, ``roles``/``contents``
            ``[messages]`` → flat ids, flat mask ``[tokens]`` and tokens per conversation."""
            ids, masks, lengths, at = [], [], [], 0
            for n in turns.tolist():
                messages = [
                    {"role": r.decode("utf-8"), "content": c.decode("utf-8")}
                    for r, c in zip(roles[at : at + n], contents[at : at + n], strict=True)
                ]
                at += n
                example_ids, mask = encode_conversation(vocabulary, chat_format, messages, add_eos)
                ids.append(example_ids)
                masks.append(mask)
                lengths.append(len(mask))
            flat = [np.concatenate(x) if x else np.zeros(0, np.int32) for x in (ids, masks)]
            return flat[0], flat[1], np.array(lengths, np.int64)

        def fn(ex: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            roles, contents = ex["roles"], ex["contents"]
            ids, mask, lengths = tf.numpy_function(
                encode,
                [roles.row_lengths(), roles.flat_values, contents.flat_values],
                [tf.int32, tf.int32, tf.int64],
                stateful=False,
            )
            lengths.set_shape([None])
            return {
                "id": ex["id"],
                "lang": ex["lang"],
                "targets": tf.RaggedTensor.from_row_lengths(tf.reshape(ids, [-1]), lengths),
                "loss_mask": tf.RaggedTensor.from_row_lengths(tf.reshape(mask, [-1]), lengths),
            }

        size = int(dataset.cardinality())
        ds = dataset.ragged_batch(self.batch).map(
            fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        ds = ds.unbatch()
        if size >= 0:  # unbatch forgets it; cache_in_memory needs it
            ds = ds.apply(tf.data.experimental.assert_cardinality(size))
        return ds


@gin.configurable(denylist=["dataset"])
def cache_in_memory(dataset: tf.data.Dataset, max_examples: int = 200_000) -> tf.data.Dataset:
    """Keeps tokenized examples in memory after the first epoch, for datasets of known size.

    Rendering and tokenizing then happen once per run instead of once per epoch; datasets of
    unknown size or larger than ``max_examples`` (gin ``cache_in_memory.max_examples``) stream.
    """
    size = int(dataset.cardinality())
    return dataset.cache() if 0 <= size <= max_examples else dataset


@gin.configurable
class ChatFeatureConverter(seqio.FeatureConverter):
    """Packs ``targets`` with their ``loss_mask`` for a decoder-only model.

    ``packer="best_fit"`` packs windows of ``window`` examples best-fit decreasing
    (:mod:`packing`); ``"seqio"`` uses SeqIO's greedy ``trim_and_pack``. Examples longer than
    the target length are truncated (``overlong="truncate"``) or dropped (``"drop"``);
    ``polyglot-jax data describe`` counts them per language. Gin binds the constructor's
    arguments as ``ChatFeatureConverter.packer``, ``.window`` and ``.overlong``.

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
        """Converts ``ds``; ``loss_mask`` takes the length of ``targets`` unless given.

        An example's length is that of its ``loss_mask``: SeqIO trims ``targets`` to
        ``task_feature_lengths`` before the converter (unless ``trim_output_features=False``)
        but not ``loss_mask``, so over-long examples are still recognised (and dropped with
        ``overlong="drop"``), and the mask is cut to the targets it belongs to.
        """
        length = task_feature_lengths["targets"]
        lengths = {"loss_mask": length, **task_feature_lengths}
        if self.overlong == "drop":
            ds = ds.filter(lambda ex: tf.size(ex["loss_mask"]) - _starts(ex["loss_mask"]) <= length)
        ds = ds.map(lambda ex: self._shift(ex, length)).filter(
            lambda ex: tf.size(ex["targets"]) > 0
        )
        return super().__call__(ds, lengths)

    def _shift(self, ex: Mapping[str, tf.Tensor], length: int) -> dict[str, tf.Tensor]:
        """Adds ``inputs``: the decoder input of each target, per example.

        ``targets``, ``inputs`` and ``loss_mask`` come out with the same length, at most
        ``length`` (``[tokens]`` each).
        """
        targets, mask = ex["targets"], ex["loss_mask"]
        start = _starts(mask)  # 1: the first token is an input only
        begin = tf.fill(tf.reshape(1 - start, [1]), tf.constant(self.bos_id, tf.int32))
        inputs = tf.concat([begin, targets[:-1]], axis=0)[:length]
        targets = targets[start:][:length]
        mask = mask[start : start + tf.size(targets)]
        return {**ex, "inputs": inputs, "targets": targets, "loss_mask": mask}

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


def _starts(mask: tf.Tensor) -> tf.Tensor:
    """1 when an example's first token (``mask`` ``[tokens]``) is marked :data:`START`, else 0."""
    return tf.cast(tf.reduce_any(tf.equal(mask[:1], START)), tf.int32)
