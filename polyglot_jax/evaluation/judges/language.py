"""The language judge: response language (agreement with the prompt's) and chrF.

Input: ``infer`` JSONL files. Output: one judgment per response,
``{"run", "id", "lang", "response_lang", "lang_agree", "chrf"}`` (``chrf`` is None without a
reference), and a per-language summary.
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
    records: Sequence[dict], run: str, candidates: Iterable[str] | None = None
) -> list[dict]:
    """Language ID and chrF for each inference record.

    Args:
      records: inference lines (``id``, ``lang``, ``response``, optional ``reference``).
      run: the run's name, copied into every judgment.
      candidates: languages lingua chooses from (default: every detectable language).
    """
    if candidates is None:
        candidates = langid.default_candidates({r["lang"] for r in records})
    detected = langid.detect([r["response"] for r in records], candidates)
    judgments = []
    for record, response_lang in zip(records, detected, strict=True):
        reference = record.get("reference")
        judgments.append(
            {
                "run": run,
                "id": record["id"],
                "sample": record.get("sample", 0),
                "lang": record["lang"],
                "response_lang": response_lang,
                "lang_agree": response_lang == record["lang"],
                "chrf": metrics.chrf(record["response"], reference) if reference else None,
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
    candidates: Iterable[str] | None = None,
) -> epath.Path:
    """Judges every inference file in ``paths`` and writes ``judgments.jsonl`` and a summary.

    Returns:
      The path of ``judgments.jsonl``.
    """
    records = read_all(paths)
    judgments = judge_records(records, run, candidates)
    out = storage.as_path(output_dir)
    path = out / "judgments.jsonl"
    storage.write_atomic(path, "".join(json.dumps(j, ensure_ascii=False) + "\n" for j in judgments))
    storage.write_json(out / "summary.json", summarize(judgments))
    return path
