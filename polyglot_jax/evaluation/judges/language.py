"""The language judge: response language (agreement with the prompt's) and chrF.

Input: ``infer`` JSONL files. Output: one judgment per response,
``{"run", "id", "sample", "lang", "response_lang", "lang_agree", "chrf", "language_id"}``
(``chrf`` is None without a reference; ``language_id`` names the identifier and its candidate
set, e.g. ``lingua, open set (75 languages)``), and a per-language summary. An answer in a
language other than the prompt's, evaluation language or not, does not agree.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Iterable, Sequence

from etils import epath

from polyglot_jax import storage
from polyglot_jax.evaluation import langid, metrics
from polyglot_jax.evaluation.outputs import read_all


def judge_records(
    records: Sequence[dict], run: str, identifier: langid.Identifier | None = None
) -> list[dict]:
    """Language ID and chrF for each inference record.

    Args:
      records: inference lines (``id``, ``lang``, ``response``, optional ``reference``).
      run: the run's name, copied into every judgment.
      identifier: from :func:`langid.make_identifier` (default: lingua over every language it
        knows).
    """
    identifier = identifier or langid.make_identifier("lingua")
    verdicts = langid.agreement(
        identifier, [r["response"] for r in records], [r["lang"] for r in records]
    )
    judgments = []
    for record, (response_lang, agrees) in zip(records, verdicts, strict=True):
        reference = record.get("reference")
        judgments.append(
            {
                "run": run,
                "id": record["id"],
                "sample": record.get("sample", 0),
                "lang": record["lang"],
                "response_lang": response_lang,
                "lang_agree": agrees,
                "chrf": metrics.chrf(record["response"], reference) if reference else None,
                "language_id": identifier.description,
            }
        )
    return judgments


def summarize(judgments: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Per language: number of responses, agreement rate and mean chrF."""
    by_lang: dict[str, list[dict]] = collections.defaultdict(list)
    for j in judgments:
        by_lang[j["lang"]].append(j)
    summary = {}
    for lang, items in sorted(by_lang.items()):
        chrfs = [j["chrf"] for j in items if j["chrf"] is not None]
        summary[lang] = {
            "n": len(items),
            "lang_agree": sum(j["lang_agree"] for j in items) / len(items),
            "chrf": sum(chrfs) / len(chrfs) if chrfs else float("nan"),
        }
    return summary


def judge_outputs(
    paths: Iterable[str | os.PathLike],
    output_dir: str | os.PathLike,
    run: str,
    identifier: langid.Identifier | None = None,
) -> epath.Path:
    """Judges every inference file in ``paths`` and writes ``judgments.jsonl`` and a summary.

    Args:
      identifier: as for :func:`judge_records`; every judgment records its description.

    Returns:
      The path of ``judgments.jsonl``.
    """
    records = read_all(paths)
    judgments = judge_records(records, run, identifier)
    out = storage.as_path(output_dir)
    path = out / "judgments.jsonl"
    storage.write_atomic(path, "".join(json.dumps(j, ensure_ascii=False) + "\n" for j in judgments))
    storage.write_json(out / "summary.json", summarize(judgments))
    return path
