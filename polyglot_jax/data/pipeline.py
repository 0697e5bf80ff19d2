"""Training input: a SeqIO mixture packed, batched per host, checkpointable mid-stream.

:func:`train_batches` returns a :class:`BatchIterator` over ``tf.data``; its position (shuffle
buffers, mixture sampler, packer window, the in-memory example cache) is saved with each
checkpoint by :class:`polyglot_jax.training.checkpoints.Checkpointer`, so a resumed run
continues from the next unseen batch without iterating the consumed ones again.
"""

from __future__ import annotations

import atexit
import pathlib
import weakref
from collections.abc import Iterator, Mapping

import jax
import numpy as np
import seqio
import tensorflow as tf

from polyglot_jax.data import chat_tasks
from polyglot_jax.data.preprocessors import ChatFeatureConverter
from polyglot_jax.errors import ConfigError, RunDirError


def vocabulary_of(mixture_or_task_name: str) -> seqio.Vocabulary:
    """The ``targets`` vocabulary of a registered task or mixture."""
    return get_mixture_or_task(mixture_or_task_name).output_features["targets"].vocabulary


def get_mixture_or_task(name: str) -> seqio.Task | seqio.Mixture:
    """A registered SeqIO task or mixture.

    Raises:
      ConfigError: nothing of that name is registered (the message names it).
    """
    if not isinstance(name, str):
        raise ConfigError(f"MIXTURE_OR_TASK_NAME must be a task or mixture name, got {name!r}")
    if name not in seqio.MixtureRegistry.names() and name not in seqio.TaskRegistry.names():
        raise ConfigError(
            f"no SeqIO task or mixture named {name!r} is registered (import the module that "
            f"registers it, e.g. tasks)"
        )
    return seqio.get_mixture_or_task(name)


_OPEN: weakref.WeakSet[BatchIterator] = weakref.WeakSet()


@atexit.register
def _close_open_iterators() -> None:
    """Closes the iterators still open when the program ends, before Python finalizes.

    An endless pipeline keeps packing windows ahead in ``tf.data`` threads that call into Python
    (:func:`packing.best_fit_pack_dataset`); destroyed during finalization, when those threads
    can no longer take the GIL, its iterator would wait for them forever.
    """
    for iterator in list(_OPEN):
        iterator.close()


class BatchIterator(Iterator[dict[str, np.ndarray]]):
    """NumPy batches from a ``tf.data`` pipeline whose position can be saved and restored.

    Args:
      dataset: the batched pipeline.
    """

    def __init__(self, dataset: tf.data.Dataset) -> None:
        self._iterator = iter(dataset)
        self._checkpoint = tf.train.Checkpoint(iterator=self._iterator)
        _OPEN.add(self)

    def __next__(self) -> dict[str, np.ndarray]:
        if self._iterator is None:
            raise StopIteration
        return {k: v.numpy() for k, v in next(self._iterator).items()}

    def close(self) -> None:
        """Stops the pipeline and frees it; the iterator is exhausted afterwards."""
        self._iterator = self._checkpoint = None
        _OPEN.discard(self)

    def save(self, prefix: str | pathlib.Path) -> None:
        """Writes the position to files starting with ``prefix``."""
        self._checkpoint.write(str(prefix))

    def restore(self, prefix: str | pathlib.Path) -> None:
        """Continues from the position saved at ``prefix``.

        Raises:
          ValueError: nothing readable at ``prefix``, or it belongs to another pipeline.
        """
        try:
            self._checkpoint.read(str(prefix)).assert_consumed()
        except (tf.errors.OpError, AssertionError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RunDirError(f"{prefix}: cannot restore the data position ({first})") from e


def train_batches(
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    batch_size: int,
    seed: int,
    split: str = "train",
    pack: bool = True,
    shard_info: seqio.ShardInfo | None = None,
) -> BatchIterator:
    """This host's share of each global batch, forever.

    Args:
      mixture_or_task_name: a registered SeqIO task or mixture.
      task_feature_lengths: e.g. ``{"targets": 512}``.
      batch_size: global batch size; each of the hosts reads ``batch_size / process_count``.
      seed: shuffling and mixture sampling seed.
      split: dataset split.
      pack: pack several examples into each row.
      shard_info: this host's shard; defaults to ``jax.process_index() / process_count()``.
    """
    if shard_info is None:
        shard_info = seqio.ShardInfo(jax.process_index(), jax.process_count())
    if batch_size % shard_info.num_shards:
        raise ConfigError(
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
        trim_output_features=False,  # the converter truncates (keeping a START token's room)
    )
    ds = ds.batch(batch_size // shard_info.num_shards, drop_remainder=True)
    return BatchIterator(ds.prefetch(2))


def validation_batches(
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    batch_size: int,
    split: str = "validation",
    shard_info: seqio.ShardInfo | None = None,
) -> dict[str, list[dict[str, np.ndarray]]]:
    """This host's unpacked ``split`` batches per language, one pass, padded to full batches.

    Languages are those of the mixture's tasks that have ``split``. Every host gets the same
    number of batches per language (padding rows carry zero loss weight), so the evaluation
    steps stay in lockstep across hosts.
    """
    if shard_info is None:
        shard_info = seqio.ShardInfo(jax.process_index(), jax.process_count())
    rows = batch_size // shard_info.num_shards
    task_or_mixture = seqio.get_mixture_or_task(mixture_or_task_name)
    out: dict[str, list[dict[str, np.ndarray]]] = {}
    for task in getattr(task_or_mixture, "tasks", [task_or_mixture]):
        if split not in task.splits:
            continue
        lang = chat_tasks.task_records(task, split)[0]["lang"]
        total = task.num_input_examples(split)
        per_host = -(-total // shard_info.num_shards)
        ds = seqio.get_dataset(
            task.name,
            task_feature_lengths=dict(task_feature_lengths),
            feature_converter=ChatFeatureConverter(pack=False),
            dataset_split=split,
            shuffle=False,
            num_epochs=1,
            shard_info=shard_info,
            trim_output_features=False,
        )
        examples = list(ds.as_numpy_iterator())
        padded = -(-per_host // rows) * rows
        batches = []
        for start in range(0, padded, rows):
            chunk = examples[start : start + rows]
            batch = {
                key: np.zeros((rows, *value.shape), value.dtype)
                for key, value in examples[0].items()
            }
            for row, example in enumerate(chunk):
                for key, value in example.items():
                    batch[key][row] = value
            batches.append(batch)
        out.setdefault(lang, []).extend(batches)
    return out
