"""Training input: a SeqIO mixture packed, batched per host, resumable at a step.

The stream is a pure function of (mixture, lengths, seed, batch size, host shard), so a resumed
run rebuilds it and skips the batches already consumed instead of replaying them through the
model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import jax
import numpy as np
import seqio

from polyglot_jax.data.preprocessors import ChatFeatureConverter


def vocabulary_of(mixture_or_task_name: str) -> seqio.Vocabulary:
    """The ``targets`` vocabulary of a registered task or mixture."""
    return seqio.get_mixture_or_task(mixture_or_task_name).output_features["targets"].vocabulary


def train_batches(
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    batch_size: int,
    seed: int,
    start_step: int = 0,
    split: str = "train",
    pack: bool = True,
    shard_info: seqio.ShardInfo | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Yields this host's share of each global batch, forever, starting at ``start_step``.

    Args:
      mixture_or_task_name: a registered SeqIO task or mixture.
      task_feature_lengths: e.g. ``{"targets": 512}``.
      batch_size: global batch size; each of the hosts reads ``batch_size / process_count``.
      seed: shuffling and mixture sampling seed.
      start_step: batches already consumed (skipped without being produced).
      split: dataset split.
      pack: pack several examples into each row.
      shard_info: this host's shard; defaults to ``jax.process_index() / process_count()``.
    """
    if shard_info is None:
        shard_info = seqio.ShardInfo(jax.process_index(), jax.process_count())
    if batch_size % shard_info.num_shards:
        raise ValueError(
            f"batch size {batch_size} is not divisible by {shard_info.num_shards} hosts"
        )
    ds = seqio.get_dataset(
        mixture_or_task_name,
        task_feature_lengths=dict(task_feature_lengths),
        feature_converter=ChatFeatureConverter(pack=pack),
        dataset_split=split,
        shuffle=True,
        num_epochs=None,
        shard_info=shard_info,
        seed=seed,
    )
    ds = ds.batch(batch_size // shard_info.num_shards, drop_remainder=True)
    return ds.skip(start_step).as_numpy_iterator()
