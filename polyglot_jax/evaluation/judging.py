"""Judge inference outputs: response language (agreement with the prompt's) and chrF.

Input: ``infer`` JSONL files. Output: one judgment per response,
``{"run", "id", "lang", "response_lang", "lang_agree", "chrf"}`` (``chrf`` is None without a
reference), and a per-language summary.
"""

from __future__ import annotations

import collections
import json
import pathlib
from collections.abc import Iterable, Sequence

from polyglot_jax.data.sources import DataError
from polyglot_jax.evaluation import backends, judges, langid, metrics
from polyglot_jax.evaluation.store import JudgmentStore

REQUIRED_FIELDS = ("id", "lang", "response")


def output_files(paths: Iterable[str | pathlib.Path]) -> list[pathlib.Path]:
    """Expands directories to the ``*.jsonl`` files in them, in sorted order."""
    out = []
    for path in map(pathlib.Path, paths):
        if path.is_dir():
            out.extend(sorted(path.glob("*.jsonl")))
        elif path.exists():
            out.append(path)
        else:
            raise FileNotFoundError(f"inference output {path} does not exist")
    if not out:
        raise FileNotFoundError(f"no inference outputs (*.jsonl) in {[str(p) for p in paths]}")
    return out


def read_outputs(path: pathlib.Path) -> list[dict]:
    """Inference records of one file; a bad line is a :class:`DataError` naming file:line."""
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{number}: malformed JSON ({e.msg})") from None
            missing = [
                k for k in REQUIRED_FIELDS if not isinstance(record, dict) or k not in record
            ]
            if missing:
                raise DataError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
            records.append(record)
    return records


def judge_records(
    records: Sequence[dict], run: str, candidates: Iterable[str] | None = None
) -> list[dict]:
    """Language ID and chrF for each inference record.

    Args:
      records: inference lines (``id``, ``lang``, ``response``, optional ``reference``).
      run: the run's name, copied into every judgment.
      candidates: languages lingua chooses from (default: every detectable language).
    """
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
    paths: Iterable[str | pathlib.Path],
    output_dir: str | pathlib.Path,
    run: str,
    candidates: Iterable[str] | None = None,
) -> pathlib.Path:
    """Judges every inference file in ``paths`` and writes ``judgments.jsonl`` and a summary.

    Returns:
      The path of ``judgments.jsonl``.
    """
    records = [r for path in output_files(paths) for r in read_outputs(path)]
    judgments = judge_records(records, run, candidates)
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "judgments.jsonl"
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(j, ensure_ascii=False) + "\n" for j in judgments))
    tmp.replace(path)
    (out / "summary.json").write_text(json.dumps(summarize(judgments), indent=2) + "\n")
    return path


def llm_judge_outputs(
    paths: Iterable[str | pathlib.Path],
    output_dir: str | pathlib.Path,
    run: str,
    protocol: str,
    backend: backends.Backend,
    baseline: Iterable[str | pathlib.Path] = (),
    db: str | pathlib.Path | None = None,
    language_gate: bool = False,
    progress: bool = True,
) -> pathlib.Path:
    """Judges inference outputs with an LLM judge; writes ``<output_dir>/<protocol>.jsonl``.

    Pairwise judging matches each response with the baseline's response to the same prompt
    (same language and id); a prompt the baseline lacks is an error naming it. Judgments are
    stored in ``db`` (default ``<output_dir>/judgments.sqlite``), so a re-run sends no request
    for what is already judged.
    """
    records = [r for path in output_files(paths) for r in read_outputs(path)]
    judge = judges.get_protocol(protocol)
    base = {}
    if judge.pairwise:
        base = {  # the baseline's first sample of each prompt
            (r["lang"], r["id"]): r["response"]
            for path in output_files(baseline)
            for r in read_outputs(path)
            if r.get("sample", 0) == 0
        }
        missing = [f"{r['lang']}/{r['id']}" for r in records if (r["lang"], r["id"]) not in base]
        if missing:
            raise DataError(f"baseline outputs lack {len(missing)} prompts, e.g. {missing[0]}")
    items = [
        judges.Item(
            f"{run}/{r['lang']}/{r['id']}" + (f"#sample{r['sample']}" if r.get("sample") else ""),
            r["lang"],
            r.get("prompt", ""),
            r["response"],
            base.get((r["lang"], r["id"])),
        )
        for r in records
    ]
    out = pathlib.Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = JudgmentStore(db or out / "judgments.sqlite")
    try:
        results = judges.run(judge, backend, items, store, language_gate, progress=progress)
    finally:
        store.close()
    path = out / f"{protocol}.jsonl"
    path.write_text(
        "".join(json.dumps({"run": run, **r}, ensure_ascii=False) + "\n" for r in results)
    )
    return path
