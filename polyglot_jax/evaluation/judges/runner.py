"""Running an LLM judge over inference outputs: requests in flight, answers stored as they arrive.

:func:`run` judges items with a protocol and a backend; :func:`llm_judge_outputs` reads ``infer``
files, pairs them with a baseline for pairwise protocols, and writes ``<protocol>.jsonl``;
:func:`failure_counts` says why items were not judged.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import pathlib
from collections.abc import Callable, Iterable, Sequence

from etils import epath
from tqdm import tqdm

from polyglot_jax import storage
from polyglot_jax.clients import usage
from polyglot_jax.clients.backends import Backend
from polyglot_jax.errors import ConfigError, DataError
from polyglot_jax.evaluation import langid
from polyglot_jax.evaluation.judges import protocols
from polyglot_jax.evaluation.judges.protocols import Item, JudgeProtocol, ParseError
from polyglot_jax.evaluation.judges.store import Judgment, JudgmentStore, exclusive, judgment_key
from polyglot_jax.evaluation.outputs import read_all

log = logging.getLogger(__name__)


def run(
    protocol: JudgeProtocol,
    backend: Backend,
    items: Sequence[Item],
    store: JudgmentStore,
    language_gate: bool = False,
    progress: bool = True,
    identifier: langid.Identifier | None = None,
) -> list[dict]:
    """Judges ``items``, storing every judgment as it arrives; returns one result per item.

    Requests stay in flight up to the backend's concurrency for the whole run (no batch
    barriers); each answer is parsed and committed as soon as it arrives.

    Stored judgments are reused without a request. Each result has ``item_id``, ``lang``,
    ``status`` (``ok``, ``invalid`` or ``failed``, with ``reason``) and, when ok, the protocol's
    scores (pairwise: also ``verdicts``, each order's verdict, the model first as A,
    then as B). With ``language_gate`` every result also has ``response_lang``, ``language_match``
    and ``language_id``, and an ok ``score`` counts only when the response is in the question's
    language: the verdict of :func:`langid.agreement` with ``identifier`` (default: lingua over
    every language it knows), the one that language agreement gives.
    """
    planned = []  # (item, order, key, messages)
    for item in items:
        for order, messages in protocol.requests(item):
            key = judgment_key(
                protocol.name, backend.name, [item.item_id, order, messages[-1]["content"]]
            )
            planned.append((item, order, key, messages))
    todo = [p for p in planned if not store.done(p[2])]
    bar = tqdm(total=len(todo), desc=f"judge {protocol.name}", disable=not progress)
    tokens = usage.UsageStore(store.path)  # the usage table of the same cache file
    for index, completion in backend.iter_complete([p[3] for p in todo]):
        item, order, key, _ = todo[index]
        item_id = f"{item.item_id}#{order}" if order else item.item_id
        if completion.text is None:
            judgment = Judgment(
                key,
                protocol.name,
                backend.name,
                item_id,
                "failed",
                "",
                None,
                completion.error or "no output",
            )
        else:
            try:
                parsed, status, reason = protocol.parse(completion.text), "ok", ""
            except ParseError as e:
                parsed, status, reason = None, "invalid", str(e)
            judgment = Judgment(
                key, protocol.name, backend.name, item_id, status, completion.text, parsed, reason
            )
        store.put(judgment)
        usage.record(tokens, key, completion, "judge", item.item_id.split("/")[0], item.lang)
        bar.update(1)
    bar.close()
    tokens.close()

    gate = {}
    if language_gate:
        identifier = identifier or langid.make_identifier("lingua")
        verdicts = langid.agreement(
            identifier, [i.response for i in items], [i.lang for i in items]
        )
        gate = {
            i.item_id: {
                "response_lang": code,
                "language_match": float(agrees),
                "language_id": identifier.description,
            }
            for i, (code, agrees) in zip(items, verdicts, strict=True)
        }
    by_item: dict[str, list[Judgment]] = {}
    for item, _, key, _ in planned:
        by_item.setdefault(item.item_id, []).append(store.get(key))
    results = []
    for item in items:
        judgments = by_item[item.item_id]
        result = {"item_id": item.item_id, "lang": item.lang}
        bad = [j for j in judgments if j.status != "ok"]
        if bad:
            result.update(status=bad[0].status, reason=bad[0].reason)
        else:
            result.update(status="ok", **protocol.score([j.parsed for j in judgments]))
            if protocol.pairwise:  # each order's verdict, for the position diagnostics
                result["verdicts"] = "".join(j.parsed["verdict"] for j in judgments)
            if language_gate:
                result["score"] *= gate[item.item_id]["language_match"]
        result.update(gate.get(item.item_id, {}))
        results.append(result)
    return results


def failure_counts(results: Iterable[dict]) -> collections.Counter:
    """Items not judged, per reason: the request's failure (``HTTP 401``, ``timeout``) or
    ``invalid verdict`` for answers that did not parse."""
    return collections.Counter(
        r["reason"] if r["status"] == "failed" else "invalid verdict"
        for r in results
        if r["status"] != "ok"
    )


def read_items(
    paths: Iterable[str | os.PathLike],
    run_name: str,
    protocol: JudgeProtocol,
    baseline: Iterable[str | os.PathLike] = (),
) -> list[Item]:
    """The items to judge in inference outputs (paired with the baseline for pairwise).

    Raises:
      ConfigError: a pairwise protocol without baseline outputs.
      DataError: a bad record, or a prompt that the baseline lacks (named).
      MissingFileError: a path that does not exist or holds no ``*.jsonl``.
    """
    records = read_all(paths)
    base = {}
    if protocol.pairwise:
        baseline = list(baseline)
        if not baseline:
            raise ConfigError(f"--protocol={protocol.name} needs --baseline outputs")
        base = {  # the baseline's first sample of each prompt
            (r["lang"], r["id"]): r["response"]
            for r in read_all(baseline)
            if r.get("sample", 0) == 0
        }
        missing = [f"{r['lang']}/{r['id']}" for r in records if (r["lang"], r["id"]) not in base]
        if missing:
            raise DataError(f"baseline outputs lack {len(missing)} prompts, e.g. {missing[0]}")
    return [
        Item(
            f"{run_name}/{r['lang']}/{r['id']}"
            + (f"#sample{r['sample']}" if r.get("sample") else ""),
            r["lang"],
            r.get("prompt", ""),
            r["response"],
            base.get((r["lang"], r["id"])),
        )
        for r in records
    ]


def llm_judge_outputs(
    paths: Iterable[str | os.PathLike],
    output_dir: str | os.PathLike,
    run_name: str,
    protocol: str,
    backend: Backend | Callable[[], Backend],
    baseline: Iterable[str | os.PathLike] = (),
    db: str | os.PathLike | None = None,
    language_gate: bool = False,
    progress: bool = True,
    prompt_file: str | None = None,
    identifier: langid.Identifier | None = None,
) -> epath.Path:
    """Judges inference outputs with an LLM judge; writes ``<output_dir>/<protocol>.jsonl``.

    Pairwise judging matches each response with the baseline's response to the same prompt
    (same language and id); a prompt the baseline lacks is an error naming it. Judgments are
    stored in ``db`` (default ``<output_dir>/judgments.sqlite``), so a re-run sends no request
    for what is already judged; the cache is locked for the run, so two processes never send
    the same requests.

    Args:
      backend: the judge, or a function that makes it once the inputs are read and the cache is
        locked and open (so bad inputs and a busy or broken cache are reported before a local
        model loads).
      prompt_file: the judge prompt instead of the protocol's own (see
        :func:`protocols.get_protocol`); judgments are cached per prompt text.
      identifier: the language identifier of ``language_gate`` (see :func:`run`).

    Raises:
      BusyError: another judge process is using ``db``.
    """
    judge = protocols.get_protocol(protocol, prompt_file)
    items = read_items(paths, run_name, judge, baseline)
    out = storage.as_path(output_dir)
    db = pathlib.Path(db) if db else default_db(out)
    with exclusive(db), JudgmentStore(db) as store:
        if callable(backend):
            backend = backend()
        results = run(judge, backend, items, store, language_gate, progress, identifier)
    path = out / f"{protocol}.jsonl"
    lines = (json.dumps({"run": run_name, **r}, ensure_ascii=False) + "\n" for r in results)
    storage.write_atomic(path, "".join(lines))
    return path


def default_db(output_dir: epath.Path) -> pathlib.Path:
    """``<output_dir>/judgments.sqlite``; for a bucket, a local cache file named after it.

    SQLite needs a local file: judgments of a ``gs://`` output folder are cached in
    ``$POLYGLOT_JAX_CACHE/judgments/`` (default ``~/.cache/polyglot_jax``), as the log says.
    """
    return storage.local_file_for(output_dir, "judgments.sqlite", "judgments")
