"""Human calibration of an LLM judge: a sample for annotators, their labels, and agreement.

:func:`export_sample` draws ``per_language`` judged items per language (seeded) from a judge
output folder (a run's ``judge/``, or a study root holding ``<run>/judge/``) and writes a CSV
an annotator fills in: item id, language, protocol, prompt, the answer (pairwise: answer A, the
judged model's, and answer B, the baseline's; the annotator is not told which is which), the
allowed labels and an empty label column per label (facets: one per facet). A prompt or answer
that starts like a spreadsheet formula (``=``, ``+``, ``-``, ``@``) gets a leading ``'`` in the
CSV (not in the HTML), so a spreadsheet shows it as text; import reads only ids and labels.
:func:`import_labels` reads the filled CSV back, checks every row, writes the labels beside the
judge output (``human_<protocol>.jsonl``, replacing earlier labels of the same items) and returns
the judge–human agreement per language (:func:`agreement`): Cohen's kappa of pairwise verdicts
(A win, B loss, C tie; the judge's from both orders' verdicts), Spearman's rho of scores
(facets: their mean).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import random
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
from etils import epath
from scipy import stats

from polyglot_jax import storage
from polyglot_jax.errors import ConfigError, DataError, MissingFileError
from polyglot_jax.evaluation.judges import protocols
from polyglot_jax.evaluation.outputs import read_all

VERDICTS = ("A", "B", "C")


def _cell(text: str) -> str:
    """``text`` for a spreadsheet cell: a leading ``'`` when it starts as a formula would."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@") else text


def allowed_labels(protocol: str) -> tuple[str, tuple[str, ...]]:
    """What an annotator may write for ``protocol``, in words, and the label columns.

    Raises:
      ConfigError: an unknown protocol.
    """
    judge = protocols.get_protocol(protocol)
    if judge.pairwise:
        return "A (answer A is better), B (answer B is better) or C (tie)", ("label",)
    if isinstance(judge, protocols.Facets):
        return "each facet an integer 1-3", tuple(f"label_{f}" for f in protocols.FACETS)
    low, high = getattr(judge, "scale", (1, 10))
    return f"an integer {low}-{high}", ("label",)


def _scale(protocol: str) -> tuple[int, int]:
    judge = protocols.get_protocol(protocol)
    return (1, 3) if isinstance(judge, protocols.Facets) else getattr(judge, "scale", (1, 10))


def judge_dirs(path: str | os.PathLike, protocol: str) -> list[epath.Path]:
    """The judge folders under ``path`` holding ``<protocol>.jsonl``: ``path`` itself (a run's
    ``judge/``), else ``path/<run>/judge`` (a study root).

    Raises:
      MissingFileError: no such folder.
    """
    root = storage.as_path(path)
    if (root / f"{protocol}.jsonl").exists():
        return [root]
    found = sorted(
        d / "judge" for d in root.glob("*") if (d / "judge" / f"{protocol}.jsonl").exists()
    )
    if not found:
        raise MissingFileError(
            f"{root}: no {protocol}.jsonl here nor in <run>/judge/ below (judge the runs first)"
        )
    return found


def _rows(path: epath.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _item_id(run: str, record: dict) -> str:
    sample = f"#sample{record['sample']}" if record.get("sample") else ""
    return f"{run}/{record['lang']}/{record['id']}{sample}"


def export_sample(
    path: str | os.PathLike,
    protocol: str,
    output: str | os.PathLike,
    per_language: int,
    seed: int = 0,
    baseline: Iterable[str | os.PathLike] = (),
    html_output: str | os.PathLike | None = None,
) -> dict[str, int]:
    """Writes a seeded sample of judged items per language as a CSV for annotators.

    Only items the judge scored (status ``ok``) are drawn; answers are read from each run's
    ``infer/`` folder beside its ``judge/``, the baseline's (pairwise) from ``baseline``.

    Args:
      path: a run's judge folder or a study root (:func:`judge_dirs`).
      protocol: the judge protocol whose output is sampled.
      output: the CSV to write.
      per_language: items drawn per language (all when fewer).
      seed: the sample's seed; the same seed draws the same items.
      baseline: infer outputs of the pairwise baseline.
      html_output: also write the sample as an HTML table here.

    Returns:
      Items written per language.

    Raises:
      ConfigError: ``per_language`` below 1, pairwise without ``baseline``.
      DataError: a judged item whose answer is missing from the infer outputs.
      MissingFileError: no judge output, or no infer outputs beside it.
    """
    if per_language < 1:
        raise ConfigError(f"--per_language must be at least 1, got {per_language}")
    judge, baseline = protocols.get_protocol(protocol), list(baseline)
    if judge.pairwise and not baseline:
        raise ConfigError(f"{protocol}: give --baseline, the infer outputs judged against")
    base = {}
    if judge.pairwise:
        base = {(r["lang"], r["id"]): r for r in read_all(baseline) if not r.get("sample")}
    by_lang: dict[str, list[tuple[dict, dict]]] = {}
    for folder in judge_dirs(path, protocol):
        rows = [r for r in _rows(folder / f"{protocol}.jsonl") if r["status"] == "ok"]
        infer = folder.parent / "infer"
        run = rows[0]["run"] if rows else ""
        answers = {_item_id(run, a): a for a in read_all([infer])} if rows else {}
        for row in rows:
            if row["item_id"] not in answers:
                raise DataError(f"{folder}: no answer for {row['item_id']} in {infer}")
            by_lang.setdefault(row["lang"], []).append((row, answers[row["item_id"]]))
    rng, chosen = random.Random(seed), []
    for lang in sorted(by_lang):
        items = sorted(by_lang[lang], key=lambda pair: pair[0]["item_id"])
        chosen += rng.sample(items, min(per_language, len(items)))
    allowed, labels = allowed_labels(protocol)
    table, shown = [], []
    for row, answer in chosen:
        texts = [answer.get("prompt", ""), answer["response"]]
        if judge.pairwise:
            texts.append(base.get((answer["lang"], answer["id"]), {}).get("response", ""))
        shown.append([row["item_id"], row["lang"], protocol, *texts, allowed, *[""] * len(labels)])
        table.append([*shown[-1][:3], *map(_cell, texts), *shown[-1][3 + len(texts) :]])
    answer_columns = ("answer_a", "answer_b") if judge.pairwise else ("answer",)
    header = ["item_id", "language", "protocol", "prompt", *answer_columns, "allowed", *labels]
    header.append("comment")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[*r, ""] for r in table])
    storage.write_atomic(output, buffer.getvalue())
    if html_output is not None:
        storage.write_atomic(html_output, _html(header, [[*r, ""] for r in shown]))
    counts: dict[str, int] = {}
    for row, _ in chosen:
        counts[row["lang"]] = counts.get(row["lang"], 0) + 1
    return counts


def _html(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>\n" for row in rows
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><style>td{vertical-align:top;'
        "white-space:pre-wrap;border:1px solid #ccc}</style></head><body>\n"
        f"<table><tr>{cells}</tr>\n{body}</table></body></html>\n"
    )


def _label(row: dict, protocol: str, labels: Sequence[str]) -> str | int | dict | None:
    """The row's label (None when left empty); ValueError when not an allowed value."""
    values = [(row.get(column) or "").strip() for column in labels]
    if not any(values):
        return None
    if protocol == "pairwise":
        if values[0].upper() not in VERDICTS:
            raise ValueError(f"label {values[0]!r} is not A, B or C")
        return values[0].upper()
    low, high = _scale(protocol)
    scores = []
    for column, value in zip(labels, values, strict=True):
        if not (value.isdigit() and low <= int(value) <= high):
            raise ValueError(f"{column} {value!r} is not an integer {low}-{high}")
        scores.append(int(value))
    if len(labels) == 1:
        return scores[0]
    return dict(zip(protocols.FACETS, scores, strict=True))


def read_labels(
    csv_path: str | os.PathLike, protocol: str, skip_bad: bool = False
) -> tuple[list[dict], int, int]:
    """The labelled rows of a filled CSV (``{"item_id", "lang", "label"}``), the number of
    rows left unlabelled and the number of bad rows skipped.

    Raises:
      DataError: ``file:line: problem`` for a bad row (a missing column, an item id twice, a
        label not allowed for the protocol, another protocol), unless ``skip_bad``.
    """
    _, labels = allowed_labels(protocol)
    text = storage.as_path(csv_path).read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in ("item_id", "language", *labels) if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{csv_path}:1: the header lacks {', '.join(missing)}")
    out, seen, empty, bad, line = [], set(), 0, 0, reader.line_num + 1
    for row in reader:
        try:
            if None in row or any(v is None for v in row.values()):
                raise ValueError("wrong number of columns")
            if not row["item_id"].strip():
                raise ValueError("empty item_id")
            if row.get("protocol", protocol).strip() not in ("", protocol):
                raise ValueError(f"protocol {row['protocol']!r}, importing {protocol}")
            if row["item_id"] in seen:
                raise ValueError(f"item {row['item_id']} appears twice")
            label = _label(row, protocol, labels)
        except ValueError as e:
            if not skip_bad:
                raise DataError(f"{csv_path}:{line}: {e}") from None
            bad += 1
        else:
            seen.add(row["item_id"])
            if label is None:
                empty += 1
            else:
                out.append({"item_id": row["item_id"], "lang": row["language"], "label": label})
        line = reader.line_num + 1
    return out, empty, bad


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float:
    """Cohen's kappa of two raters' categorical labels of the same items.

    ``(p_o - p_e) / (1 - p_e)``: observed agreement against the agreement expected from each
    rater's label frequencies. NaN when undefined (no items, or both raters always give the
    same single label).
    """
    if len(first) != len(second):
        raise ValueError(f"{len(first)} labels against {len(second)}")
    if not first:
        return math.nan
    a, b = np.asarray(first), np.asarray(second)
    observed = float(np.mean(a == b))
    expected = sum(
        float(np.mean(a == k)) * float(np.mean(b == k)) for k in set(first) | set(second)
    )
    return math.nan if expected == 1.0 else (observed - expected) / (1.0 - expected)


def spearman(first: Sequence[float], second: Sequence[float]) -> float:
    """Spearman's rho (``scipy.stats.spearmanr``); NaN under 2 items or for constant scores."""
    if len(first) < 2 or len(set(first)) < 2 or len(set(second)) < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.spearmanr(first, second).statistic)


def _judge_label(row: dict, protocol: str) -> str | float:
    """The judge's verdict (the model is answer A: both orders' verdicts, before any language
    gate) or its score (after the gate, when the run used one)."""
    if protocol == "pairwise":
        if "verdicts" in row:
            return {"AB": "A", "BA": "B"}.get(row["verdicts"], "C")
        return {1.0: "A", 0.0: "B"}.get(float(row["score"]), "C")
    return float(row["score"])


def _human_value(label: str | int | dict) -> str | float:
    if isinstance(label, dict):
        return sum(label.values()) / len(label)
    return label if isinstance(label, str) else float(label)


def labels_file(judge_dir: str | os.PathLike, protocol: str) -> epath.Path:
    """``<judge_dir>/human_<protocol>.jsonl``: the human labels of a run's judged items."""
    return storage.as_path(judge_dir) / f"human_{protocol}.jsonl"


def import_labels(
    csv_path: str | os.PathLike, path: str | os.PathLike, protocol: str, skip_bad: bool = False
) -> tuple[dict[str, int], list[dict]]:
    """Stores a filled CSV's labels beside the judge output; returns counts and agreement.

    Each run's labels go to :func:`labels_file` of its judge folder (written atomically; labels
    stored before for other items are kept, those of the same items replaced), with the
    judge's verdict or score beside each.

    Args:
      csv_path: the CSV :func:`export_sample` wrote, filled in.
      path: the judge folder or study root it was exported from.
      protocol: the judge protocol.
      skip_bad: skip and count bad rows instead of failing on the first.

    Returns:
      ``{"labelled", "unlabelled", "bad"}`` row counts, and :func:`agreement` of every label
      stored under ``path``.

    Raises:
      DataError: a bad row (``file:line``), or an item the judge output does not have.
      MissingFileError: no judge output under ``path``.
    """
    labelled, empty, bad = read_labels(csv_path, protocol, skip_bad)
    judged = {}
    for folder in judge_dirs(path, protocol):
        for row in _rows(folder / f"{protocol}.jsonl"):
            if row["status"] == "ok":
                judged[row["item_id"]] = (folder, row)
    unknown = [r["item_id"] for r in labelled if r["item_id"] not in judged]
    if unknown:
        raise DataError(
            f"{csv_path}: {len(unknown)} items the judge output under {path} has not scored, "
            f"e.g. {unknown[0]}"
        )
    per_folder: dict[str, list[dict]] = {}
    for label in labelled:
        folder, row = judged[label["item_id"]]
        stored = {"run": row["run"], **label, "lang": row["lang"], "protocol": protocol}
        stored["judge"] = _judge_label(row, protocol)
        per_folder.setdefault(os.fspath(folder), []).append(stored)
    for folder, rows in per_folder.items():
        file = labels_file(folder, protocol)
        kept = {r["item_id"]: r for r in (_rows(file) if file.exists() else [])}
        kept.update((r["item_id"], r) for r in rows)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept.values())
        storage.write_atomic(file, text)
    counts = {"labelled": len(labelled), "unlabelled": empty, "bad": bad}
    return counts, agreement(stored_labels(path, protocol), protocol)


def stored_labels(path: str | os.PathLike, protocol: str) -> list[dict]:
    """Every stored human label under ``path`` (a judge folder or a study root); none when
    there is no judge output."""
    try:
        folders = judge_dirs(path, protocol)
    except MissingFileError:
        return []
    files = [labels_file(f, protocol) for f in folders]
    return [r for f in files if f.exists() for r in _rows(f)]


def agreement(labels: Sequence[dict], protocol: str) -> list[dict]:
    """Judge–human agreement per language, then over all: ``{"lang", "n", "statistic",
    "value", "exact"}``; ``statistic`` is ``kappa`` (pairwise) or ``spearman``, ``exact``
    the share of items where judge and human give the same label."""
    by_lang: dict[str, list[dict]] = {}
    for row in labels:
        by_lang.setdefault(row["lang"], []).append(row)
    groups = [*sorted(by_lang.items()), ("all", list(labels))] if len(by_lang) > 1 else []
    groups = groups or sorted(by_lang.items())
    out = []
    for lang, rows in groups:
        human = [_human_value(r["label"]) for r in rows]
        judge = [r["judge"] for r in rows]
        pairwise = protocol == "pairwise"
        value = cohen_kappa(judge, human) if pairwise else spearman(judge, human)
        exact = float(np.mean([j == h for j, h in zip(judge, human, strict=True)]))
        out.append(
            {
                "lang": lang,
                "n": len(rows),
                "statistic": "kappa" if pairwise else "spearman",
                "value": value,
                "exact": exact,
            }
        )
    return out
