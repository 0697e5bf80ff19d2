"""The four studies' datasets under one data folder, registered lazily as chat datasets.

Layout under the data folder (what ``polyglot-jax data fetch`` writes and
:mod:`polyglot_jax.testing.study_fixtures` imitates):

- ``<dataset>/<split>.<lang>.jsonl``: the project's ``{id, lang, messages}`` JSONL;
- ``<dataset>/<split>.<lang>.<part>.jsonl`` for datasets made of several sources per split and
  language (``lima_oasst``: parts ``lima`` and ``oasst``), read in the order of the parts;
- ``<dataset>/test_<lang>.jsonl`` for evaluation prompts (``oasst_test``,
  ``alpaca_eval_polyglots``, ``alpaca_eval_zero_shot``): ``{"id", "prompt"}`` lines, the layout
  of the OASST test prompts of the Better Alpaca study (usable as ``PROMPT_FILES`` too).

The folder is the gin macro ``DATA_DIR`` (``gin_configs/runs/study_data.gin``) or, when it is
None, the environment variable ``POLYGLOT_JAX_DATA_DIR``, like TFDS's ``data_dir``. The
vocabulary is ``VOCABULARY_PATH`` (a Hugging Face model folder) or, when None, the demo
vocabulary. Both are read when data is first asked for, never at registration: registering
reads no file. A missing file is one line naming it and the ``data fetch`` command.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import os
from collections.abc import Iterator, Mapping

import gin
import seqio
import tensorflow as tf
from etils import epath

from polyglot_jax import languages as registry
from polyglot_jax import storage
from polyglot_jax.data import chat_tasks, sources, vocab
from polyglot_jax.errors import ConfigError, MissingFileError

ENV_DATA_DIR = "POLYGLOT_JAX_DATA_DIR"

# Polyglots (Kew et al. 2023, arXiv 2312.12683): English plus the five most frequent
# non-English languages of Guanaco (OASST1), in the order they are added
# (gin_configs/studies/polyglots/common.gin).
POLYGLOTS_LANGUAGES = ("en", "es", "ru", "de", "zh", "fr")
# Pinch (Shaham et al. 2024, arXiv 2401.01854): English and the 11 languages LIMA + OASST were
# translated into, in the order of the study's figures (gin_configs/mix_pinch.gin).
PINCH_LANGUAGES = ("en", "ar", "zh", "cs", "et", "fi", "he", "hi", "it", "ru", "es", "sw")
# Better Alpaca (Chen et al. 2023, arXiv 2309.08958): the languages of its OASST test prompts
# (hplt-project/monolingual-multilingual-instruction-tuning, test-data/; bn, hi and no have no
# training data: the study's unseen languages) and of the translations its authors published.
OASST_TEST_LANGUAGES = ("bg", "bn", "cs", "en", "es", "fi", "fr", "hi", "no", "ru", "zh")
BETTER_ALPACA_LANGUAGES = ("bg", "cs", "de", "en", "es", "fi", "fr", "ru", "zh")
ALPACA_LANGUAGES = ("bg", "cs", "de", "en", "es", "fi", "fr", "pt", "ru", "zh")
# OASST1's largest languages that the language registry knows (its message trees' `lang`).
OASST1_LANGUAGES = ("en", "es", "ru", "de", "zh", "fr", "ca", "pt", "it", "uk", "th", "eu")
# Polyglots' evaluation (Kew et al. 2023, arXiv 2312.12683): the AlpacaEval instructions in
# English and machine-translated into 13 languages, grouped as tuned (the languages of its
# multilingual tuning data), zero-shot and unseen (ZurichNLP/multilingual-instruction-tuning,
# data/alpaca_eval/).
POLYGLOTS_EVAL_GROUPS: dict[str, tuple[str, ...]] = {
    "tuned": ("es", "ru", "de", "zh", "fr"),
    "zero-shot": ("ca", "sv", "no", "da", "bg"),
    "unseen": ("is", "hi", "el"),
}
POLYGLOTS_EVAL_LANGUAGES = (
    "en",
    *(lang for group in POLYGLOTS_EVAL_GROUPS.values() for lang in group),
)
# Zero-shot transfer (Chirkova & Nikoulina 2024, arXiv 2402.14778): its 113 AlpacaEval test
# prompts in English and translated into French, Portuguese and Russian (naver/pasero,
# examples/zero-shot-transfer-inst-tuning/data/).
ZERO_SHOT_EVAL_LANGUAGES = ("en", "fr", "pt", "ru")
# Bactrian-X (Li et al. 2023): 52 languages; those of the language registry.
BACTRIAN_X_LANGUAGES = (
    *("ar", "bn", "cs", "de", "en", "es", "et", "fa", "fi", "fr", "he", "hi", "id", "it", "ja"),
    *("ko", "nl", "pl", "pt", "ru", "sw", "ta", "te", "th", "tr", "uk", "ur", "vi", "zh"),
)


@dataclasses.dataclass(frozen=True)
class StudyDataset:
    """Where one study dataset's files are and what they hold.

    Attributes:
      name: dataset name (task prefix, folder under the data folder, ``data fetch`` name).
      languages: the languages it can have (tasks are registered for each).
      splits: its splits.
      parts: sources per split and language (``<split>.<lang>.<part>.jsonl``); empty: one file.
      prompts: ``{"id", "prompt"}`` files named ``<split>_<lang>.jsonl`` (evaluation prompts).
      parallel: whether its languages share ids (translations), as its fixture data does.
      source: where the data comes from, for the docs.
    """

    name: str
    languages: tuple[str, ...]
    splits: tuple[str, ...]
    parts: tuple[str, ...] = ()
    prompts: bool = False
    parallel: bool = False
    source: str = ""

    def relative_files(self, split: str, lang: str) -> list[str]:
        """Paths of one split and language relative to the data folder, in reading order."""
        if self.prompts:
            return [f"{self.name}/{split}_{lang}.jsonl"]
        if self.parts:
            return [f"{self.name}/{split}.{lang}.{part}.jsonl" for part in self.parts]
        return [f"{self.name}/{split}.{lang}.jsonl"]


DATASETS: dict[str, StudyDataset] = {
    d.name: d
    for d in (
        StudyDataset(
            "guanaco",
            (*POLYGLOTS_LANGUAGES, "ca", "pt", "it", "uk", "th"),
            ("train", "validation"),
            source="timdettmers/openassistant-guanaco split by `data tag` (Polyglots)",
        ),
        StudyDataset("lima", ("en",), ("train", "test"), source="GAIR/lima (zero-shot)"),
        StudyDataset(
            "oasst1",
            OASST1_LANGUAGES,
            ("train", "validation"),
            source="OpenAssistant/oasst1, top-ranked path of every tree",
        ),
        StudyDataset(
            "lima_oasst",
            PINCH_LANGUAGES,
            ("train", "test"),
            parts=("lima", "oasst"),
            parallel=True,
            source="LIMA + OASST1 first turns, translated (Pinch)",
        ),
        StudyDataset("dolly", ("en",), ("train",), source="databricks/databricks-dolly-15k"),
        StudyDataset(
            "alpaca",
            ALPACA_LANGUAGES,
            ("train",),
            parallel=True,
            source="yahma/alpaca-cleaned and pinzhenchen/alpaca-cleaned-<lang> (Better Alpaca)",
        ),
        StudyDataset(
            "bactrian_x",
            BACTRIAN_X_LANGUAGES,
            ("train",),
            parallel=True,
            source="MBZUAI/Bactrian-X",
        ),
        StudyDataset(
            "aya",
            tuple(sorted(registry.LANGUAGES)),
            ("train", "test"),
            source="CohereLabs/aya_dataset",
        ),
        StudyDataset(
            "oasst_test",
            OASST_TEST_LANGUAGES,
            ("test",),
            prompts=True,
            parallel=True,
            source="the 50 OASST test prompts of Better Alpaca, human-translated",
        ),
        StudyDataset(
            "alpaca_eval_polyglots",
            POLYGLOTS_EVAL_LANGUAGES,
            ("test",),
            prompts=True,
            parallel=True,
            source="the 805 AlpacaEval instructions of Polyglots, machine-translated",
        ),
        StudyDataset(
            "alpaca_eval_zero_shot",
            ZERO_SHOT_EVAL_LANGUAGES,
            ("test",),
            prompts=True,
            parallel=True,
            source="the 113 AlpacaEval test prompts of the zero-shot study, translated",
        ),
    )
}


def get(name: str) -> StudyDataset:
    """A study dataset by name; an unknown name lists the known ones."""
    if name not in DATASETS:
        raise ConfigError(f"unknown study dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


@gin.configurable
def settings(
    data_dir: str | None = None, vocabulary_path: str | None = None
) -> tuple[str | None, str | None]:
    """``(DATA_DIR, VOCABULARY_PATH)`` as gin binds them (``runs/study_data.gin``)."""
    return data_dir, vocabulary_path


def data_dir() -> str:
    """The data folder: ``DATA_DIR``, else ``$POLYGLOT_JAX_DATA_DIR``.

    Raises:
      ConfigError: neither is set (the message says how to set one).
    """
    folder = settings()[0] or os.environ.get(ENV_DATA_DIR)
    if not folder:
        raise ConfigError(
            f'no data folder: pass --gin.DATA_DIR=\\"DIR\\" (runs/study_data.gin) or set '
            f"{ENV_DATA_DIR}; fill it with `polyglot-jax data fetch NAME --data_dir=DIR`"
        )
    return os.fspath(folder)


def fetch_command(name: str, folder: str, lang: str | None = None) -> str:
    """The ``data fetch`` command that writes a dataset (one language of it) into ``folder``."""
    languages = f" --languages={lang}" if lang and len(get(name).languages) > 1 else ""
    return f"polyglot-jax data fetch {name} --data_dir={folder}{languages}"


def files(name: str, split: str, lang: str, folder: str | None = None) -> list[epath.Path]:
    """The files of one split and language (local or ``gs://``), after checking they exist.

    Raises:
      MissingFileError: a file is missing; the message names it and the fetch command.
    """
    folder = folder or data_dir()
    paths = [storage.as_path(folder) / rel for rel in get(name).relative_files(split, lang)]
    for path in paths:
        if not path.is_file():
            raise MissingFileError(
                f"{path} does not exist: run `{fetch_command(name, folder, lang)}`"
            )
    return paths


class LazyFiles(Mapping):
    """``(split, lang) → first file`` of a study dataset, resolved when read.

    Membership is what the dataset can have (so asking for a missing language names the fetch
    command); iteration gives only the pairs whose files exist in the data folder (none when no
    folder is set), so recipes that look at "the other languages" see what was fetched.
    """

    def __init__(self, study: StudyDataset) -> None:
        self.study = study
        self._keys = tuple((s, lang) for lang in study.languages for s in study.splits)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __getitem__(self, key: tuple[str, str]) -> epath.Path:
        if key not in self._keys:
            raise KeyError(key)
        return files(self.study.name, *key)[0]

    def _present(self) -> list[tuple[str, str]]:
        folder = settings()[0] or os.environ.get(ENV_DATA_DIR)
        if not folder:
            return []
        root = storage.as_path(folder)
        return [
            key
            for key in self._keys
            if all((root / rel).is_file() for rel in self.study.relative_files(*key))
        ]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._present())

    def __len__(self) -> int:
        return len(self._present())


class StudyChatDataset(chat_tasks.ChatDataset):
    """A :class:`chat_tasks.ChatDataset` over :class:`LazyFiles`: parts and prompt files read
    and concatenated in order, each file read once (cached by path and modification time)."""

    @property
    def languages(self) -> tuple[str, ...]:
        return self.files.study.languages

    @property
    def splits(self) -> tuple[str, ...]:
        return self.files.study.splits

    def records(self, split: str, lang: str) -> list[dict]:
        registry.get(lang)
        if (split, lang) not in self.files:
            raise ConfigError(f"dataset {self.name!r} has no split {split!r} in language {lang!r}")
        out: list[dict] = []
        for path in files(self.name, split, lang):
            stat = path.stat()
            out += _read(os.fspath(path), (stat.mtime, stat.length), lang, self.files.study.prompts)
        return out


@functools.lru_cache(maxsize=256)
def _read(path: str, version: tuple, lang: str, prompts: bool) -> list[dict]:
    del version  # (modification time, size) in the cache key: a re-fetched file is read again
    reader = sources.read_prompts_jsonl if prompts else sources.read_jsonl
    records = list(reader(storage.as_path(path), lang))
    if not records:
        raise sources.DataError(f"{path}: no {lang!r} records")
    return records


class Setting(enum.Enum):
    VOCABULARY_PATH = "VOCABULARY_PATH"  # a value taken from gin when used


class LazyVocabulary(seqio.Vocabulary):
    """A tokenizer folder's vocabulary, loaded when used.

    Tasks are registered before gin binds ``VOCABULARY_PATH``; the default asks gin whenever it
    is used, so a run encodes with the tokenizer its config names. Two lazy vocabularies are
    equal when they load the same folder (SeqIO requires the tasks of a mixture to share a
    vocabulary); a lazy one equals another vocabulary that it loads.

    Args:
      path: a Hugging Face model folder, None for the demo vocabulary, or (the default)
        ``Setting.VOCABULARY_PATH``: gin's ``VOCABULARY_PATH`` when used.
    """

    def __init__(self, path: str | Setting | None = Setting.VOCABULARY_PATH) -> None:
        self._path = path
        super().__init__(extra_ids=0)

    @property
    def path(self) -> str | None:
        """The folder this vocabulary loads (None: the demo vocabulary)."""
        path = settings()[1] if self._path is Setting.VOCABULARY_PATH else self._path
        return None if path is None else os.fspath(path)

    @property
    def resolved(self) -> seqio.Vocabulary:
        """The loaded vocabulary (loaded once per folder)."""
        return _load_vocabulary(self.path)

    def __getattr__(self, name: str) -> object:  # info, encode_with_offsets, tokenizer, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.resolved, name)

    @property
    def eos_id(self) -> int | None:
        return self.resolved.eos_id

    @property
    def bos_id(self) -> int | None:
        return getattr(self.resolved, "bos_id", None)

    @property
    def pad_id(self) -> int:
        return self.resolved.pad_id

    @property
    def unk_id(self) -> int | None:
        return self.resolved.unk_id

    @property
    def _base_vocab_size(self) -> int:
        return self.resolved.vocab_size

    def _encode(self, s: str) -> list[int]:
        return self.resolved.encode(s)

    def _decode(self, ids: list[int]) -> str:
        return self.resolved.decode(ids)

    def _encode_tf(self, s: tf.Tensor) -> tf.Tensor:
        return self.resolved.encode_tf(s)

    def _decode_tf(self, ids: tf.Tensor) -> tf.Tensor:
        return self.resolved.decode_tf(ids)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyVocabulary):
            return self.path == other.path
        return isinstance(other, seqio.Vocabulary) and self.resolved == other

    def __hash__(self) -> int:
        return hash(LazyVocabulary)  # the folder may follow gin, so it cannot be in the hash

    def __repr__(self) -> str:
        return f"LazyVocabulary({self._path})"


@functools.lru_cache(maxsize=8)
def _load_vocabulary(path: str | None) -> seqio.Vocabulary:
    return vocab.demo_vocabulary() if path is None else vocab.load_vocabulary(path)


VOCABULARY = LazyVocabulary()


def register(name: str) -> list[str]:
    """Registers ``<name>_<lang>`` tasks of one study dataset (nothing is read); their names."""
    study = get(name)
    dataset = StudyChatDataset(name, LazyFiles(study))
    return chat_tasks.register_dataset(dataset, VOCABULARY)
