"""The structured benchmarks, one registry entry each: files, reader (with its prompt), metrics.

Adding a benchmark is one :class:`Benchmark` in :data:`BENCHMARKS`: where its files are under
the data folder, how a file becomes items (choice items are scored by log-likelihood, answer
items by generation), and the metric functions that turn scores or predictions into numbers.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from polyglot_jax import languages
from polyglot_jax.data import fetch_sources
from polyglot_jax.errors import ConfigError, MissingFileError
from polyglot_jax.evaluation.benchmarks import harness_readers, metrics, mgsm, readers


@dataclasses.dataclass(frozen=True)
class Options:
    """Scoring choices that change a benchmark's numbers.

    Attributes:
      squad_normalization: ``squad`` (official SQuAD v1.1, what XQuAD reports) or ``mlqa``.
    """

    squad_normalization: str = "squad"

    def __post_init__(self) -> None:
        if self.squad_normalization not in metrics.NORMALIZATIONS:
            raise ConfigError(
                f"unknown SQuAD normalization {self.squad_normalization!r}; "
                f"choose from {', '.join(metrics.NORMALIZATIONS)}"
            )


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """One structured benchmark.

    Attributes:
      name: task prefix (``<name>_<lang>``).
      kind: ``choice`` (log-likelihood of each choice) or ``generate`` (greedy answer).
      files: ``(data_dir, lang) → {split: candidate path}``; splits whose file exists are used.
      read: ``(path, lang) → items`` (choice or answer items of :mod:`readers`).
      metrics: ``(lang, options) → metric objects`` with SeqIO's call protocol and
        ``per_item`` (the row values the report aggregates).
      languages: languages the prompt supports (None: any registry language with data).
      report: per-item row key → (report title, scale), for the report's tables.
      split: the split scored when none is named (the labelled one a study reports).
      translation: how the non-English text was made: ``human`` (translated by people),
        ``machine`` (automatically translated) or ``unknown``.
      license: the release's license, as its authors state it (``unknown`` when not found).
    """

    name: str
    kind: Literal["choice", "generate"]
    files: Callable[[pathlib.Path, str], dict[str, pathlib.Path]]
    read: Callable[[pathlib.Path, str], list[dict]]
    metrics: Callable[[str, Options], list[Any]]
    languages: tuple[str, ...] | None
    report: Mapping[str, tuple[str, float]]
    split: str = "test"
    translation: Literal["human", "machine", "unknown"] = "unknown"
    license: str = "unknown"


def _xcopa_files(data_dir: pathlib.Path, lang: str) -> dict[str, pathlib.Path]:
    root = data_dir / "xcopa" / lang
    return {"validation": root / f"val.{lang}.jsonl", "test": root / f"test.{lang}.jsonl"}


def _xnli_files(data_dir: pathlib.Path, lang: str) -> dict[str, pathlib.Path]:
    root, files = data_dir / "xnli", {}
    for split, tsv in (("validation", "xnli.dev.tsv"), ("test", "xnli.test.tsv")):
        hf = [root / lang / f"{split}.{ext}" for ext in ("jsonl", "parquet")]
        files[split] = next((p for p in hf if p.exists()), root / tsv)
    return files


def _xcsqa_files(data_dir: pathlib.Path, lang: str) -> dict[str, pathlib.Path]:
    root = data_dir / "X-CSQA" / readers.XCSQA_FOLDERS.get(lang, lang)
    return {"validation": root / "dev.jsonl", "test": root / "test.jsonl"}


def _xquad_files(data_dir: pathlib.Path, lang: str) -> dict[str, pathlib.Path]:
    return {"test": data_dir / "xquad" / f"xquad.{lang}.json"}


def _xstorycloze_files(data_dir: pathlib.Path, lang: str) -> dict[str, pathlib.Path]:
    root = data_dir / "xstorycloze" / lang  # the Hub's splits: train and eval (validation)
    return {"train": root / "train.jsonl", "validation": root / "eval.jsonl"}


def _pawsx_files(data_dir: pathlib.Path, lang: str) -> dict[str, pathlib.Path]:
    root = data_dir / "paws-x" / lang
    return {split: root / f"{split}.jsonl" for split in ("validation", "test")}


def _xwinograd_files(data_dir: pathlib.Path, lang: str) -> dict[str, pathlib.Path]:
    return {"test": data_dir / "xwinograd" / lang / "test.jsonl"}


def _belebele_files(data_dir: pathlib.Path, lang: str) -> dict[str, pathlib.Path]:
    variant = fetch_sources.BELEBELE_VARIANTS.get(lang, lang)
    return {"test": data_dir / "belebele" / f"{variant}.jsonl"}


def _mgsm_files(data_dir: pathlib.Path, lang: str) -> dict[str, pathlib.Path]:
    return {"test": data_dir / "mgsm" / lang / "test.jsonl"}  # exemplars: train.jsonl beside


BENCHMARKS: dict[str, Benchmark] = {
    "xcopa": Benchmark(
        name="xcopa",
        kind="choice",
        files=_xcopa_files,
        read=readers.read_xcopa,
        metrics=lambda lang, options: [metrics.ChoiceAccuracy("xcopa_acc")],
        languages=tuple(readers.XCOPA_CONNECTORS),
        report={"xcopa_acc": ("XCOPA accuracy (%)", 100.0)},
        translation="human",  # COPA translated by native speakers (Ponti et al. 2020)
        license="CC BY 4.0",
    ),
    "xnli": Benchmark(
        name="xnli",
        kind="choice",
        files=_xnli_files,
        read=readers.read_xnli,
        metrics=lambda lang, options: [metrics.ChoiceAccuracy("xnli_acc")],
        languages=tuple(readers.XNLI_WORDS),
        report={"xnli_acc": ("XNLI accuracy (%)", 100.0)},
        translation="human",  # professional translators (Conneau et al. 2018)
        license="CC BY-NC 4.0",
    ),
    # Scored as lm-evaluation-harness's xcsqa_<lang> tasks: acc, acc_norm (by characters) and
    # acc_bytes (by UTF-8 bytes). The official test split has no labels: use the dev split.
    "xcsqa": Benchmark(
        name="xcsqa",
        kind="choice",
        files=_xcsqa_files,
        read=readers.read_xcsqa,
        metrics=lambda lang, options: [
            metrics.ChoiceAccuracy("xcsqa_acc"),
            metrics.ChoiceAccuracy("xcsqa_acc_norm", "chars"),
            metrics.ChoiceAccuracy("xcsqa_acc_bytes", "bytes"),
        ],
        languages=tuple(readers.XCSQA_FOLDERS),
        report={
            "xcsqa_acc": ("X-CSQA accuracy (%)", 100.0),
            "xcsqa_acc_norm": ("X-CSQA accuracy, per-character normalised (%)", 100.0),
            "xcsqa_acc_bytes": ("X-CSQA accuracy, per-byte normalised (%)", 100.0),
        },
        split="validation",
        # CSQA's dev and test sets translated automatically (X-CSR, Lin et al. 2021); the
        # license is the one the INK-USC/xcsr dataset card states (CommonsenseQA is MIT too).
        translation="machine",
        license="MIT",
    ),
    "xquad": Benchmark(
        name="xquad",
        kind="generate",
        files=_xquad_files,
        read=readers.read_xquad,
        metrics=lambda lang, options: [
            metrics.SquadMetric("xquad", lang, options.squad_normalization)
        ],
        languages=None,
        report={
            "xquad_em": ("XQuAD exact match (%)", 100.0),
            "xquad_f1": ("XQuAD F1 (%)", 100.0),
        },
        translation="human",  # professional translators (Artetxe et al. 2020)
        license="CC BY-SA 4.0",
    ),
    # lm-evaluation-harness's xstorycloze_<lang>, scored on its validation split ("eval").
    # Translation and license as the juletxara/xstory_cloze dataset card states them: the
    # English StoryCloze eval split professionally translated (Lin et al. 2022), CC BY-SA 4.0.
    "xstorycloze": Benchmark(
        name="xstorycloze",
        kind="choice",
        files=_xstorycloze_files,
        read=harness_readers.read_xstorycloze,
        metrics=lambda lang, options: [metrics.ChoiceAccuracy("xstorycloze_acc")],
        languages=harness_readers.XSTORYCLOZE_LANGUAGES,
        report={"xstorycloze_acc": ("XStoryCloze accuracy (%)", 100.0)},
        split="validation",
        translation="human",
        license="CC BY-SA 4.0",
    ),
    # lm-evaluation-harness's paws_<lang>: each choice the whole text, an empty context scored
    # after the prefix token. The google-research-datasets/paws-x card: dev and test translated
    # by professional translators (the train split by machine); license "other" (the PAWS
    # release: free to use for any purpose, acknowledging Google as the source appreciated).
    "pawsx": Benchmark(
        name="pawsx",
        kind="choice",
        files=_pawsx_files,
        read=harness_readers.read_pawsx,
        metrics=lambda lang, options: [metrics.ChoiceAccuracy("pawsx_acc")],
        languages=tuple(harness_readers.PAWSX_WORDS),
        report={"pawsx_acc": ("PAWS-X accuracy (%)", 100.0)},
        translation="human",
        license="other (free use; acknowledgement of Google appreciated)",
    ),
    # lm-evaluation-harness's xwinograd_<lang> ("multiple input": one context per option, the
    # rest of the sentence scored after each). Muennighoff/xwinograd's card: CC BY 4.0; the
    # schemas were written or translated by people (Tikhonov & Ryabinin 2021).
    "xwinograd": Benchmark(
        name="xwinograd",
        kind="choice",
        files=_xwinograd_files,
        read=harness_readers.read_xwinograd,
        metrics=lambda lang, options: [metrics.ChoiceAccuracy("xwinograd_acc")],
        languages=tuple(harness_readers.XWINOGRAD_SUBSETS),
        report={"xwinograd_acc": ("XWinograd accuracy (%)", 100.0)},
        translation="human",
        license="CC BY 4.0",
    ),
    # lm-evaluation-harness's belebele_<variant> (the FLORES-200 variant of each language in
    # fetch_sources.BELEBELE_VARIANTS): acc and acc_norm (equal here: every choice is one
    # letter). The facebook/belebele card: CC BY-SA 4.0; passages from FLORES-200 and questions
    # translated by people from English.
    "belebele": Benchmark(
        name="belebele",
        kind="choice",
        files=_belebele_files,
        read=harness_readers.read_belebele,
        metrics=lambda lang, options: [
            metrics.ChoiceAccuracy("belebele_acc"),
            metrics.ChoiceAccuracy("belebele_acc_norm", "chars"),
        ],
        languages=tuple(fetch_sources.BELEBELE_VARIANTS),
        report={
            "belebele_acc": ("Belebele accuracy (%)", 100.0),
            "belebele_acc_norm": ("Belebele accuracy, per-character normalised (%)", 100.0),
        },
        translation="human",
        license="CC BY-SA 4.0",
    ),
    # lm-evaluation-harness's mgsm_native_cot_<lang> with --num_fewshot 8 (mgsm.py): greedy
    # chain of thought, exact match after its strict and flexible extractions. The
    # juletxara/mgsm card: CC BY-SA 4.0; GSM8K problems translated by human annotators
    # (Shi et al. 2022).
    "mgsm": Benchmark(
        name="mgsm",
        kind="generate",
        files=_mgsm_files,
        read=mgsm.read_mgsm,
        metrics=lambda lang, options: [mgsm.MgsmExactMatch(lang)],
        languages=tuple(mgsm.WORDS),
        report={
            "mgsm_strict": ("MGSM exact match, strict extraction (%)", 100.0),
            "mgsm_flexible": ("MGSM exact match, flexible extraction (%)", 100.0),
        },
        translation="human",
        license="CC BY-SA 4.0",
    ),
}


# What ``polyglot-jax eval`` scores when no --benchmarks is given: the studies' benchmarks.
DEFAULT_BENCHMARKS = ("xcopa", "xnli", "xcsqa", "xquad")


def get(name: str) -> Benchmark:
    """A benchmark by name.

    Raises:
      ConfigError: unknown name (the message lists the known ones).
    """
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def check(names: Sequence[str], langs: Sequence[str]) -> list[Benchmark]:
    """The named benchmarks, after checking that each supports every language.

    Raises:
      ConfigError: an unknown benchmark or language, or a language a benchmark's prompt
        does not cover.
    """
    langs = languages.validate(langs)
    benchmarks = [get(name) for name in names]
    for benchmark in benchmarks:
        unsupported = [lang for lang in langs if lang not in (benchmark.languages or langs)]
        if unsupported:
            raise ConfigError(
                f"{benchmark.name} has no prompt for {', '.join(unsupported)} "
                f"(have {', '.join(sorted(benchmark.languages or ()))})"
            )
    return benchmarks


def parse_tasks(spec: str, langs: str | None = None) -> dict[str, tuple[str, ...]]:
    """Benchmark → languages from ``polyglot-jax eval``'s ``--benchmarks`` and ``--languages``.

    Each comma-separated entry of ``spec`` is ``NAME:LANG+LANG`` (its own languages) or ``NAME``
    (the comma-separated ``langs``): ``xnli:en+de+es,xcopa:et+it`` or ``xnli,xcopa`` with
    ``en,de``; both kinds may be mixed.

    Raises:
      ConfigError: an empty or repeated benchmark, or a ``NAME`` entry with no ``langs``.
    """
    shared = tuple(lang.strip() for lang in (langs or "").split(",") if lang.strip())
    tasks: dict[str, tuple[str, ...]] = {}
    for entry in filter(None, (e.strip() for e in spec.split(","))):
        name, colon, own = entry.partition(":")
        name = name.strip()
        chosen = tuple(lang.strip() for lang in own.split("+") if lang.strip()) if colon else shared
        if not name or not chosen:
            raise ConfigError(
                f"--benchmarks entry {entry!r}: give NAME:LANG+LANG or NAME with --languages"
            )
        if name in tasks:
            raise ConfigError(f"--benchmarks names {name} twice")
        tasks[name] = chosen
    if not tasks:
        raise ConfigError("--benchmarks names no benchmark")
    return tasks


def format_tasks(tasks: Mapping[str, Sequence[str]]) -> str:
    """The ``--benchmarks`` value of ``tasks`` (each benchmark with its languages)."""
    return ",".join(f"{name}:{'+'.join(langs)}" for name, langs in tasks.items())


def check_tasks(tasks: Mapping[str, Sequence[str]]) -> list[tuple[Benchmark, tuple[str, ...]]]:
    """Each benchmark with its canonical languages, after :func:`check`."""
    return [(check([name], langs)[0], languages.validate(langs)) for name, langs in tasks.items()]


def benchmark_files(data_dir: str | pathlib.Path, name: str, lang: str) -> dict[str, pathlib.Path]:
    """``split → file`` of one benchmark language under ``data_dir`` (``../shared/data``).

    XCOPA ``xcopa/<lang>/{val,test}.<lang>.jsonl``; XQuAD ``xquad/xquad.<lang>.json`` (test);
    X-CSQA ``X-CSQA/<lang>/{dev,test}.jsonl`` (validation, test; Japanese in ``jap``);
    XNLI ``xnli/xnli.{dev,test}.tsv`` or ``xnli/<lang>/{validation,test}.{jsonl,parquet}``;
    XStoryCloze ``xstorycloze/<lang>/{train,eval}.jsonl`` (train, validation);
    PAWS-X ``paws-x/<lang>/{validation,test}.jsonl``; XWinograd ``xwinograd/<lang>/test.jsonl``;
    Belebele ``belebele/<variant>.jsonl`` (test; ``deu_Latn`` for ``de``); MGSM
    ``mgsm/<lang>/test.jsonl`` and its exemplars ``mgsm/<lang>/train.jsonl``.

    Raises:
      ConfigError: unknown benchmark.
      MissingFileError: ``data_dir`` or every file of the language is missing.
    """
    benchmark, data_dir = get(name), pathlib.Path(data_dir)
    if not data_dir.is_dir():
        raise MissingFileError(f"data folder {data_dir} does not exist")
    candidates = benchmark.files(data_dir, lang)
    files = {split: path for split, path in candidates.items() if path.is_file()}
    if not files:
        tried = ", ".join(map(str, candidates.values()))
        raise MissingFileError(f"{name} {lang}: none of {tried} exists")
    return files


def report_metrics() -> dict[str, tuple[str, float]]:
    """Every benchmark's per-item row key → (report title, scale)."""
    return {key: value for b in BENCHMARKS.values() for key, value in b.report.items()}
