"""SeqIO tasks over chat datasets: one task per (dataset, language).

A :class:`ChatDataset` names the files of one dataset per (split, language). Its records feed a
``seqio.FunctionDataSource`` with the raw conversation (``id``, ``lang``, ``roles``,
``contents``), so any consumer (training, inference, judges) reads the same source.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable, Collection, Sequence

import seqio
import tensorflow as tf

from polyglot_jax import languages
from polyglot_jax.data import formats, preprocessors, sources, templates
from polyglot_jax.errors import ConfigError

Records = list[dict]


@dataclasses.dataclass(frozen=True)
class ChatDataset:
    """Files of one chat dataset.

    Attributes:
      name: dataset name, the prefix of its task names (``demo`` → ``demo_en``).
      files: ``(split, lang) → path`` of files in the reader's format.
      reader: a format of :data:`formats.READERS` (``jsonl``, ``guanaco``, ``alpaca``, ...).
      skip_bad: skip (and count) bad records instead of stopping at the first.
    """

    name: str
    files: dict[tuple[str, str], pathlib.Path]
    reader: str = "jsonl"
    skip_bad: bool = False

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted({lang for _, lang in self.files}))

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(sorted({split for split, _ in self.files}))

    def records(self, split: str, lang: str) -> Records:
        """All records of one split and language, validated and cached."""
        languages.get(lang)
        if (split, lang) not in self.files:
            raise ConfigError(f"dataset {self.name!r} has no split {split!r} in language {lang!r}")
        return _read_cached(
            pathlib.Path(self.files[(split, lang)]), lang, self.reader, self.skip_bad
        )

    def task_name(self, lang: str) -> str:
        return f"{self.name}_{lang}"


SKIPPED: dict[pathlib.Path, sources.SkipCounter] = {}  # bad records skipped, per file


@functools.lru_cache(maxsize=256)
def _read_cached(path: pathlib.Path, lang: str, reader: str, skip_bad: bool) -> Records:
    skipped = SKIPPED.setdefault(path, sources.SkipCounter())
    records = list(formats.get_reader(reader)(path, lang, skip_bad=skip_bad, skipped=skipped))
    if not records:
        raise sources.DataError(f"{path}: no usable {lang!r} records ({skipped.total} skipped)")
    return records


def records_to_dataset(records: Sequence[dict]) -> tf.data.Dataset:
    """Conversations as a ``tf.data.Dataset`` of ``id``, ``lang``, ``roles``, ``contents``."""
    return tf.data.Dataset.from_tensor_slices(
        {
            "id": tf.constant([r["id"] for r in records], dtype=tf.string),
            "lang": tf.constant([r["lang"] for r in records], dtype=tf.string),
            "roles": tf.ragged.constant(
                [[m["role"] for m in r["messages"]] for r in records], dtype=tf.string
            ),
            "contents": tf.ragged.constant(
                [[m["content"] for m in r["messages"]] for r in records], dtype=tf.string
            ),
        }
    )


def chat_source(
    records_fn: Callable[[str], Records], splits: Collection[str]
) -> seqio.FunctionDataSource:
    """A SeqIO source over ``records_fn(split)``, shuffled with the pipeline's seed."""

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        del shuffle_files  # one in-memory "file"; example shuffling is SeqIO's job
        return records_to_dataset(records_fn(split))

    return _ChatSource(dataset_fn, records_fn, splits=list(splits))


class _ChatSource(seqio.FunctionDataSource):
    """A function source that counts a split's examples when asked, not when registered, so
    registering a task reads no file."""

    def __init__(
        self, dataset_fn: Callable, records_fn: Callable[[str], Records], splits: list[str]
    ) -> None:
        super().__init__(dataset_fn, splits=splits)
        self._records_fn = records_fn

    def num_input_examples(self, split: str) -> int:
        return len(self._records_fn(split))

    def records(self, split: str) -> Records:
        """The split's conversations as the task holds them, without a ``tf.data`` pass."""
        return self._records_fn(split)


def add_chat_task(
    name: str,
    records_fn: Callable[[str], Records],
    splits: Collection[str],
    vocabulary: seqio.Vocabulary,
    chat_format: templates.ChatFormat | None = None,
) -> seqio.Task:
    """Registers (or replaces) a chat fine-tuning task and returns it.

    Args:
      name: the task's name.
      records_fn: split → its conversations (``{"id", "lang", "messages"}``).
      splits: the splits ``records_fn`` serves.
      vocabulary: the ``targets`` vocabulary.
      chat_format: template and loss selection of its examples; None: the run's
        (:func:`templates.chat_format`), resolved when a dataset of the task is built.
    """
    seqio.TaskRegistry.remove(name)
    return seqio.TaskRegistry.add(
        name,
        source=chat_source(records_fn, splits),
        preprocessors=[
            preprocessors.EncodeChat(None if chat_format is None else chat_format.checked()),
            preprocessors.cache_in_memory,
            seqio.CacheDatasetPlaceholder(),
        ],
        output_features={
            "targets": seqio.Feature(vocabulary, add_eos=True),
            "loss_mask": seqio.Feature(seqio.PassThroughVocabulary(2), add_eos=False),
        },
    )


DATASETS: dict[str, tuple[ChatDataset, seqio.Vocabulary]] = {}


def get_dataset(name: str) -> tuple[ChatDataset, seqio.Vocabulary]:
    """A dataset registered by :func:`register_dataset`, with its vocabulary."""
    if name not in DATASETS:
        known = ", ".join(sorted(DATASETS)) or "none (import tasks)"
        raise ConfigError(f"unknown chat dataset {name!r}; registered: {known}")
    return DATASETS[name]


def register_dataset(
    dataset: ChatDataset,
    vocabulary: seqio.Vocabulary,
    chat_format: templates.ChatFormat | None = None,
) -> list[str]:
    """Registers one task per language of ``dataset``; returns their names.

    ``chat_format`` (None: the run's) is the tasks' template and loss selection.
    """
    DATASETS[dataset.name] = (dataset, vocabulary)
    names = []
    for lang in dataset.languages:
        splits = [s for s in dataset.splits if (s, lang) in dataset.files]
        add_chat_task(
            dataset.task_name(lang),
            functools.partial(lambda split, lang: dataset.records(split, lang), lang=lang),
            splits,
            vocabulary,
            chat_format,
        )
        names.append(dataset.task_name(lang))
    return names


def task_records(task: seqio.Task, split: str) -> Records:
    """Reads a chat task's raw conversations back from its SeqIO source, in file order."""
    out = []
    for ex in task.source.get_dataset(split=split, shuffle=False).as_numpy_iterator():
        out.append(
            {
                "id": ex["id"].decode("utf-8"),
                "lang": ex["lang"].decode("utf-8"),
                "messages": [
                    {"role": r.decode("utf-8"), "content": c.decode("utf-8")}
                    for r, c in zip(ex["roles"], ex["contents"], strict=True)
                ],
            }
        )
    return out
