"""What ``data fetch`` writes for each dataset: one function per name, from rows to files.

Chat datasets go through the project's readers (:mod:`formats`), so the written files hold
validated ``{id, lang, messages}`` records; records a reader rejects (an empty answer, a
language the registry does not know) are skipped and counted in the log. Evaluation sets keep
their rows and get the file layout their benchmark readers expect (``xcopa/<lang>/``,
``xquad/xquad.<lang>.json``, ``xnli/<lang>/<split>.jsonl``, ``X-CSQA/<folder>/<split>.jsonl``,
``xstorycloze/<lang>/<split>.jsonl``, ``paws-x/<lang>/<split>.jsonl``,
``xwinograd/<lang>/test.jsonl``, ``belebele/<variant>.jsonl``, ``mgsm/<lang>/`` by
:mod:`fetch_mgsm`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable

from polyglot_jax.data import fetch_mgsm, formats, prompt_sets, sources, study_data, tag
from polyglot_jax.data import fetch_sources as where
from polyglot_jax.data.fetch_io import Fetcher, Files, jsonl, staged, with_tmp
from polyglot_jax.data.fetch_sources import SOURCES, XCSQA_FOLDERS, source
from polyglot_jax.errors import ConfigError

log = logging.getLogger(__name__)

OPENLID_URL = "https://data.statmt.org/lid/lid201-model.bin.gz"  # the release's lid201-model.bin


def _read(reader: Callable, path: object, lang: str | None, what: str, **kwargs: object) -> list:
    skipped = sources.SkipCounter()
    records = list(reader(path, lang, skip_bad=True, skipped=skipped, **kwargs))
    if skipped.total:
        log.warning("%s: skipped %d records %s", what, skipped.total, dict(skipped.counts))
    return records


def _by_lang(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for record in records:
        out.setdefault(record["lang"], []).append(record)
    return out


def _per_language(name: str, split: str, langs: list[str], records: list[dict]) -> Files:
    grouped = _by_lang(records)
    return {
        f"{name}/{split}.{lang}.jsonl": jsonl(grouped[lang]) for lang in langs if lang in grouped
    }


def _outputs(name: str, split: str, langs: list[str]) -> dict[str, str]:
    return {lang: f"{name}/{split}.{lang}.jsonl" for lang in langs}


def guanaco(f: Fetcher, langs: list[str]) -> None:
    """OpenAssistant-Guanaco split by language as the Polyglots release tagged it: the whole
    conversation (every turn, markers removed), the identifier's top-1 language, kept at
    confidence >= 0.8 (:data:`tag.GUANACO_THRESHOLD` unless the fetch sets another).

    The release used OpenLID (``--identifier=fasttext:lid201-model.bin``); lingua, the default
    when no model file is given, is logged as a difference. ``guanaco/<split>.tagging.json``
    records the identifier, text mode, threshold and counts (the ``data tag`` summary).
    """
    if f.identifier is None:
        raise ConfigError("data fetch guanaco: needs a language identifier (--identifier)")
    threshold = tag.GUANACO_THRESHOLD if f.threshold is None else f.threshold
    tag.check_threshold(threshold)  # before the download
    spec = str(getattr(f.identifier, "spec", f.identifier))
    kind, _, model = spec.partition(":")
    named = f"{kind}:{os.path.basename(model)}" if model else kind  # the same model elsewhere
    if not spec.startswith("fasttext:"):
        log.warning(
            "guanaco: tagged with %s, not the release's OpenLID; give "
            "--identifier=fasttext:lid201-model.bin (%s) to match it",
            getattr(f.identifier, "description", spec),
            OPENLID_URL,
        )
    for split in ("train", "validation"):
        _check_tagging(
            f, split, {"identifier": named, "text": tag.GUANACO_TEXT, "threshold": threshold}
        )

        def produce(tmp: str, split: str = split) -> Files:
            raw = staged(f.load(source("guanaco", split)), f"{split}.raw.jsonl", tmp)
            summary = tag.tag(
                raw,
                f"{tmp}/tagged",
                f.identifier,
                threshold,
                "guanaco",
                split,
                f.progress,
                text=tag.GUANACO_TEXT,
            )
            records: list[dict] = []
            for lang in langs:
                path = f"{tmp}/tagged/{split}.{lang}.jsonl"
                try:
                    records += list(sources.read_jsonl(path, lang))
                except sources.MissingFileError:
                    continue
            metadata = {k: v for k, v in summary.items() if k not in ("input", "files")}
            metadata["identifier"] = named
            return {
                **_per_language("guanaco", split, langs, records),
                f"guanaco/{split}.tagging.json": json.dumps(metadata, indent=2, ensure_ascii=False)
                + "\n",
            }

        f.job(f"guanaco/{split}", _outputs("guanaco", split, langs), with_tmp(produce))


def _check_tagging(f: Fetcher, split: str, settings: dict) -> None:
    """Raises :class:`ConfigError` when ``guanaco/<split>`` was tagged with other settings
    (another identifier or threshold), rather than keep files that do not match them."""
    path = f.path(f"guanaco/{split}.tagging.json")
    if not path.exists():
        return
    try:
        done = json.loads(path.read_text())
        before = {key: done.get(key) for key in settings}
    except (ValueError, AttributeError):
        return  # unreadable: the files are judged by the job's marker alone
    if before != settings:
        raise ConfigError(
            f"data fetch guanaco: {path} was tagged with {before}, not {settings}; remove "
            f"{f.path('guanaco')} (or give a new --data_dir) to tag it again"
        )


def _lima_records(f: Fetcher, split: str, tmp: str) -> list[dict]:
    path = staged(f.load(source("lima", split)), f"lima.{split}.jsonl", tmp)
    return _read(formats.read_lima, path, "en", f"LIMA {split}")


def lima(f: Fetcher, langs: list[str]) -> None:
    """LIMA: 1,030 training conversations and 300 test prompts (the user turn only)."""
    for split in ("train", "test"):

        def produce(tmp: str, split: str = split) -> Files:
            return {f"lima/{split}.en.jsonl": jsonl(_lima_records(f, split, tmp))}

        f.job(f"lima/{split}", _outputs("lima", split, langs), with_tmp(produce))


def _oasst_records(f: Fetcher, split: str, tmp: str) -> list[dict]:
    path = staged(f.load(source("oasst1", split)), f"oasst1.{split}.jsonl", tmp)
    return _read(formats.read_oasst1, path, None, f"OASST1 {split}")


def oasst1(f: Fetcher, langs: list[str]) -> None:
    """OASST1: the top-ranked path of every message tree, per language of its first message."""
    for split in ("train", "validation"):

        def produce(tmp: str, split: str = split) -> Files:
            return _per_language("oasst1", split, langs, _oasst_records(f, split, tmp))

        f.job(f"oasst1/{split}", _outputs("oasst1", split, langs), with_tmp(produce))


def _first_exchange(record: dict, prompt_only: bool) -> dict:
    return {**record, "messages": record["messages"][: 1 if prompt_only else 2]}


def lima_oasst(f: Fetcher, langs: list[str]) -> None:
    """The Pinch study's English set: LIMA and OASST1 instruction-response pairs (the first
    exchange of each conversation: the study translated pairs), and held-out prompts (LIMA's
    test prompts, the first user turns of OASST1's validation trees). The study's translations
    are not published: other languages are made with ``polyglot-jax translate``."""
    others = [lang for lang in langs if lang != "en"]
    if others and langs != list(study_data.PINCH_LANGUAGES):
        raise ConfigError(
            f"data fetch lima_oasst: the Pinch translations are not published; fetch en, then "
            f"translate each of DIR/lima_oasst/<split>.en.<part>.jsonl with `polyglot-jax "
            f"translate --languages {','.join(others)}` into <split>.<lang>.<part>.jsonl"
        )
    for split, oasst_split in (("train", "train"), ("test", "validation")):

        def produce(tmp: str, split: str = split, oasst_split: str = oasst_split) -> Files:
            held_out = split == "test"
            lima_part = [_first_exchange(r, held_out) for r in _lima_records(f, split, tmp)]
            english = [r for r in _oasst_records(f, oasst_split, tmp) if r["lang"] == "en"]
            oasst_part = [_first_exchange(r, held_out) for r in english]
            return {
                f"lima_oasst/{split}.en.lima.jsonl": jsonl(lima_part),
                f"lima_oasst/{split}.en.oasst.jsonl": jsonl(oasst_part),
            }

        outputs = study_data.get("lima_oasst").relative_files(split, "en")
        f.job(f"lima_oasst/{split}", outputs, with_tmp(produce))
    if others:
        log.warning("lima_oasst: only English is published; translate it into %s", others)


def dolly(f: Fetcher, langs: list[str]) -> None:
    """Dolly-15k (instruction, context, response), English."""

    def produce(tmp: str) -> Files:
        path = staged(f.load(source("dolly", "train")), "dolly.jsonl", tmp)
        return {"dolly/train.en.jsonl": jsonl(_read(formats.read_dolly, path, "en", "Dolly"))}

    f.job("dolly/train", _outputs("dolly", "train", langs), with_tmp(produce))


def alpaca(f: Fetcher, langs: list[str]) -> None:
    """Alpaca-cleaned and its translations; ids ``alpaca-<row>`` are parallel across languages
    (the translated files keep the English file's row order)."""
    for lang in langs:

        def produce(tmp: str, lang: str = lang) -> Files:
            rows = f.load(source("alpaca", "train"), lang=lang)
            rows = [{**row, "id": f"alpaca-{i:05d}"} for i, row in enumerate(rows)]
            path = staged(rows, f"alpaca.{lang}.json", tmp, as_list=True)
            records = _read(formats.read_alpaca, path, lang, f"Alpaca {lang}")
            return {f"alpaca/train.{lang}.jsonl": jsonl(records)}

        f.job(f"alpaca/train.{lang}", _outputs("alpaca", "train", [lang]), with_tmp(produce))


def bactrian_x(f: Fetcher, langs: list[str]) -> None:
    """Bactrian-X: instruction/input/output with ids shared by the translations of a prompt."""
    for lang in langs:

        def produce(tmp: str, lang: str = lang) -> Files:
            path = staged(f.load(source("bactrian_x", "train"), lang=lang), f"b.{lang}.jsonl", tmp)
            records = _read(formats.read_table, path, lang, f"Bactrian-X {lang}")
            return {f"bactrian_x/train.{lang}.jsonl": jsonl(records)}

        outputs = _outputs("bactrian_x", "train", [lang])
        f.job(f"bactrian_x/train.{lang}", outputs, with_tmp(produce))


def aya(f: Fetcher, langs: list[str]) -> None:
    """The Aya dataset (inputs, targets, language_code), per language; rows in languages the
    registry does not know are skipped and counted."""
    for split in ("train", "test"):

        def produce(tmp: str, split: str = split) -> Files:
            path = staged(f.load(source("aya", split)), f"aya.{split}.jsonl", tmp)
            # The ISO 639-3 column ("arb", "zho") names more languages than the English names
            # ("Standard Arabic") do.
            records = _read(
                formats.read_table, path, None, f"Aya {split}", lang_column="language_code"
            )
            return _per_language("aya", split, langs, records)

        f.job(f"aya/{split}", _outputs("aya", split, langs), with_tmp(produce))


def oasst_test(f: Fetcher, langs: list[str]) -> None:
    """The 50 OASST test prompts of Better Alpaca, ``{"id", "prompt"}`` lines, checked."""
    for lang in langs:

        def produce(tmp: str, lang: str = lang) -> Files:
            rows = f.load(source("oasst_test", "test"), lang=lang)
            path = staged(rows, f"test_{lang}.jsonl", tmp)
            list(sources.read_prompts_jsonl(path, lang))  # one-line error on a bad prompt
            return {f"oasst_test/test_{lang}.jsonl": jsonl(rows)}

        f.job(f"oasst_test/test_{lang}", [f"oasst_test/test_{lang}.jsonl"], with_tmp(produce))


def _released_prompts(
    f: Fetcher, name: str, langs: list[str], parse: prompt_sets.LineParser, id_prefix: str
) -> None:
    """``<name>/test_<lang>.jsonl`` from a release read line by line (``text`` builder)."""
    for lang in langs:

        def produce(tmp: str, lang: str = lang) -> Files:
            src = source(name, "test")
            lines = [row["text"] for row in f.load(src, lang=lang)]
            rows = prompt_sets.prompt_rows(lines, src.label(lang=lang), lang, parse, id_prefix)
            path = staged(rows, f"test_{lang}.jsonl", tmp)
            list(sources.read_prompts_jsonl(path, lang))  # the checks every prompt file gets
            return {f"{name}/test_{lang}.jsonl": jsonl(rows)}

        f.job(f"{name}/test_{lang}", [f"{name}/test_{lang}.jsonl"], with_tmp(produce))


def alpaca_eval_polyglots(f: Fetcher, langs: list[str]) -> None:
    """Polyglots' 805 AlpacaEval instructions and their translations, one pair of surrounding
    quotes stripped from the translations; ids ``alpaca_eval/<line>`` shared by languages."""
    _released_prompts(
        f, "alpaca_eval_polyglots", langs, prompt_sets.polyglots_instruction, "alpaca_eval"
    )


def alpaca_eval_zero_shot(f: Fetcher, langs: list[str]) -> None:
    """The zero-shot study's 113 AlpacaEval test prompts; ids ``alpacaeval_test_subset/<line>``
    shared by languages."""
    _released_prompts(
        f, "alpaca_eval_zero_shot", langs, prompt_sets.zero_shot_prompt, "alpacaeval_test_subset"
    )


def xcopa(f: Fetcher, langs: list[str]) -> None:
    """XCOPA as released: ``xcopa/<lang>/{val,test}.<lang>.jsonl``."""
    for lang in langs:
        outputs = [f"xcopa/{lang}/{split}.{lang}.jsonl" for split in ("val", "test")]

        def produce(lang: str = lang) -> Files:
            return {
                f"xcopa/{lang}/{split}.{lang}.jsonl": jsonl(
                    f.load(source("xcopa", split), lang=lang)
                )
                for split in ("val", "test")
            }

        f.job(f"xcopa/{lang}", outputs, produce)


def xquad(f: Fetcher, langs: list[str]) -> None:
    """XQuAD as released: ``xquad/xquad.<lang>.json`` in SQuAD v1.1's layout."""
    for lang in langs:

        def produce(lang: str = lang) -> Files:
            articles = f.load(source("xquad", "test"), lang=lang)
            document = {"version": "1.1", "data": articles}
            return {f"xquad/xquad.{lang}.json": json.dumps(document, ensure_ascii=False)}

        f.job(f"xquad/xquad.{lang}", [f"xquad/xquad.{lang}.json"], produce)


def xnli(f: Fetcher, langs: list[str]) -> None:
    """XNLI in the Hub's layout: ``xnli/<lang>/{validation,test}.jsonl``."""
    for lang in langs:
        outputs = [f"xnli/{lang}/{split}.jsonl" for split in ("validation", "test")]

        def produce(lang: str = lang) -> Files:
            return {
                f"xnli/{lang}/{split}.jsonl": jsonl(f.load(source("xnli", split), lang=lang))
                for split in ("validation", "test")
            }

        f.job(f"xnli/{lang}", outputs, produce)


def _xcsqa_row(row: dict) -> dict:
    """A Hub row (choices as ``{"label": [...], "text": [...]}``) in the release's layout."""
    question = dict(row["question"])
    choices = question["choices"]
    if isinstance(choices, dict):
        choices = [{"label": a, "text": b} for a, b in zip(*choices.values(), strict=True)]
    return {**row, "question": {**question, "choices": choices}}


def xcsqa(f: Fetcher, langs: list[str]) -> None:
    """X-CSQA in the X-CSR release's layout: ``X-CSQA/<folder>/{dev,test}.jsonl``."""
    splits = {"validation": "dev", "test": "test"}
    for lang in langs:
        folder = XCSQA_FOLDERS.get(lang, lang)
        outputs = [f"X-CSQA/{folder}/{name}.jsonl" for name in splits.values()]

        def produce(folder: str = folder) -> Files:
            out = {}
            for split, name in splits.items():
                rows = f.load(source("xcsqa", split), folder=folder)
                out[f"X-CSQA/{folder}/{name}.jsonl"] = jsonl(_xcsqa_row(r) for r in rows)
            return out

        f.job(f"X-CSQA/{folder}", outputs, produce)


# lm-evaluation-harness's task sets: each source split as JSON lines at its layout, with
# ``{lang}``, ``{split}`` and the per-language values (``folder``, ``variant``) filled in.
_EVAL_SETS: dict[str, tuple[str, dict[str, dict[str, str]]]] = {
    "xstorycloze": ("xstorycloze/{lang}/{split}.jsonl", {}),  # the Hub's train and eval
    "pawsx": ("paws-x/{lang}/{split}.jsonl", {}),
    "xwinograd": ("xwinograd/{lang}/{split}.jsonl", {"folder": where.XWINOGRAD_SUBSETS}),
    "belebele": ("belebele/{variant}.jsonl", {"variant": where.BELEBELE_VARIANTS}),  # deu_Latn: de
}


def _eval_set(f: Fetcher, langs: list[str], name: str) -> None:
    """The files of one of :data:`_EVAL_SETS`, one job per language."""
    layout, values = _EVAL_SETS[name]
    for lang in langs:
        filled = {"lang": lang, **{key: table.get(lang, lang) for key, table in values.items()}}
        files = {split: layout.format(split=split, **filled) for split in SOURCES[name]}

        def produce(filled: dict = filled, files: dict = files) -> Files:
            return {rel: jsonl(f.load(source(name, s), **filled)) for s, rel in files.items()}

        f.job(f"{name}/{lang}", list(files.values()), produce)


FETCHERS: dict[str, Callable[[Fetcher, list[str]], None]] = {
    fn.__name__: fn
    for fn in (
        *(guanaco, lima, oasst1, lima_oasst, dolly, alpaca, bactrian_x, aya, oasst_test),
        *(alpaca_eval_polyglots, alpaca_eval_zero_shot),
        *(xcopa, xquad, xnli, xcsqa),
    )
}
FETCHERS.update({name: functools.partial(_eval_set, name=name) for name in _EVAL_SETS})
FETCHERS["mgsm"] = fetch_mgsm.mgsm
