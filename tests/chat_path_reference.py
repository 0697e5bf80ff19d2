"""The chat data path as it was before rendering and tokenizing became one step: a frozen copy.

Records went to ``tf.data``, back to Python to render the template (``render_chat``), to
TensorFlow to tokenize (``tokenize_segments``) and to Python again to pack
(:class:`ReferenceConverter`). Kept only as the reference that ``test_chat_path_parity`` and
``benchmarks/data_pipeline.py`` compare the current path with; the chat format comes from gin
(``chat_format.template`` / ``chat_format.loss_on``), read when the dataset is built and while
it is iterated, as the old path read it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping

import numpy as np
import seqio
import tensorflow as tf

from polyglot_jax.data import chat_tasks, packing, templates

CONTEXT, TARGET, START = 1, 2, 3


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


def cache_in_memory(dataset: tf.data.Dataset, max_examples: int = 200_000) -> tf.data.Dataset:
    size = int(dataset.cardinality())
    return dataset.cache() if 0 <= size <= max_examples else dataset


class ReferenceConverter(seqio.FeatureConverter):
    """The old ``ChatFeatureConverter`` (best-fit or SeqIO packing, truncate or drop)."""

    TASK_FEATURES = {  # noqa: RUF012
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
        self.packer, self.window, self.overlong = packer, window, overlong
        super().__init__(pack=pack, **kwargs)

    def __call__(
        self, ds: tf.data.Dataset, task_feature_lengths: Mapping[str, int]
    ) -> tf.data.Dataset:
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
        targets, mask = ex["targets"], ex["loss_mask"]
        start = tf.cast(tf.reduce_any(tf.equal(mask[:1], START)), tf.int32)
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
            out = {
                "decoder_target_tokens": ex["targets"],
                "decoder_input_tokens": ex["inputs"],
                "decoder_loss_weights": tf.cast(tf.equal(ex["loss_mask"], TARGET), tf.int32),
            }
            if self.pack:
                out["decoder_segment_ids"] = ex.get("targets_segment_ids")
                out["decoder_positions"] = ex["targets_positions"]
            return out

        return ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE)

    def get_model_feature_lengths(self, task_feature_lengths: Mapping[str, int]) -> dict[str, int]:
        length = task_feature_lengths["targets"]
        lengths = {k: length for k in self.MODEL_FEATURES}
        if self.pack:
            lengths.update({k: length for k in self.PACKING_FEATURE_DTYPES})
        return lengths


def add_chat_task(
    name: str,
    records_fn: Callable[[str], list[dict]],
    splits: Collection[str],
    vocabulary: seqio.Vocabulary,
) -> seqio.Task:
    """Registers a chat task with the old preprocessors."""
    seqio.TaskRegistry.remove(name)
    return seqio.TaskRegistry.add(
        name,
        source=chat_tasks.chat_source(records_fn, splits),
        preprocessors=[
            render_chat,
            tokenize_segments,
            cache_in_memory,
            seqio.CacheDatasetPlaceholder(),
        ],
        output_features={
            "targets": seqio.Feature(vocabulary, add_eos=True),
            "loss_mask": seqio.Feature(seqio.PassThroughVocabulary(2), add_eos=False),
        },
    )


def train_batches(
    name: str,
    task_feature_lengths: Mapping[str, int],
    batch_size: int,
    seed: int,
    pack: bool = True,
    trim_output_features: bool = True,
) -> tf.data.Dataset:
    """The old ``pipeline.train_batches`` on one host, as a dataset of batches.

    ``trim_output_features=False`` gives the converter examples at their full length (the old
    path trimmed ``targets`` but not ``loss_mask``).
    """
    ds = seqio.get_dataset(
        name,
        task_feature_lengths=dict(task_feature_lengths),
        feature_converter=ReferenceConverter(pack=pack),
        dataset_split="train",
        shuffle=True,
        num_epochs=None,
        shard_info=seqio.ShardInfo(0, 1),
        seed=seed,
        trim_output_features=trim_output_features,
    )
    return ds.batch(batch_size, drop_remainder=True)
