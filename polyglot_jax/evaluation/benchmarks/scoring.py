"""Structured benchmarks: XCOPA and XNLI by log-likelihood, XQuAD by generation.

Each (benchmark, language) is a SeqIO task (``xcopa_et``, ``xnli_de``, ``xquad_zh``) built from
its :mod:`registry` entry: the source yields the entry's items and the metric functions are the
entry's, following SeqIO's protocol: ``score_metric_fns`` take ``(targets, scores)`` (gold
choice, per-choice log-likelihoods), ``predict_metric_fns`` take ``(targets, predictions)``
(gold answers, generated text). :func:`evaluate` computes the scores or predictions with the
loaded model (:class:`~polyglot_jax.runtime.chat_model.ChatModel`: per-token scores and
generation on its mesh) and calls them.

Scoring follows lm-evaluation-harness: the continuation is ``" " + choice`` (an item's own
``delimiter`` replaces the space: PAWS-X has none), trailing spaces of the context move to the
continuation, the continuation's tokens are those of ``encode(context + continuation)`` after
``len(encode(context))`` tokens; an empty context is the model's prefix token (BOS, else EOS;
PAWS-X); a multiple-input item (XWinograd) scores one shared ``continuation`` after each
choice as the context (:func:`choice_requests`). An item's
prediction is the choice with the largest summed log-probability (for ``acc_norm`` /
``acc_bytes``, divided by the choice's characters / UTF-8 bytes; the choice texts travel in
:class:`~polyglot_jax.evaluation.benchmarks.metrics.ChoiceTarget`). XQuAD answers are greedy,
cut at the first newline, and scored with SQuAD's exact match and F1 (:mod:`metrics`); MGSM's
items carry their own stop strings and answer length (:mod:`mgsm`).
"""

from __future__ import annotations

import functools
import itertools
import json
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import seqio
import tensorflow as tf

from polyglot_jax import storage
from polyglot_jax.errors import ConfigError
from polyglot_jax.evaluation.benchmarks import metrics, registry
from polyglot_jax.runtime import decoding
from polyglot_jax.runtime.chat_model import ChatModel
from polyglot_jax.runtime.model import LanguageModel


def _items_dataset(items: list[dict]) -> tf.data.Dataset:
    text_lists = "choices" if "choices" in items[0] else "answers"
    features = {
        "id": tf.constant([i["id"] for i in items]),
        "lang": tf.constant([i["lang"] for i in items]),
        text_lists: tf.ragged.constant([i[text_lists] for i in items], dtype=tf.string),
    }
    if "choices" in items[0]:
        # A multiple-input item has a shared continuation instead of a context; an item may
        # name its own target delimiter (default " ").
        for key in ("continuation" if "continuation" in items[0] else "context", "delimiter"):
            if key in items[0]:
                features[key] = tf.constant([i[key] for i in items])
        features["label"] = tf.constant([i["label"] for i in items], tf.int32)
    else:
        features["prompt"] = tf.constant([i["prompt"] for i in items])
        if "stop" in items[0]:  # a benchmark's own stop strings and answer length (MGSM)
            features["stop"] = tf.ragged.constant([i["stop"] for i in items], dtype=tf.string)
            features["max_new_tokens"] = tf.constant([i["max_new_tokens"] for i in items])
    return tf.data.Dataset.from_tensor_slices(features)


def register_task(
    benchmark: str,
    lang: str,
    data_dir: str | pathlib.Path,
    options: registry.Options | None = None,
) -> seqio.Task:
    """Registers (or replaces) the SeqIO task ``<benchmark>_<lang>`` over ``data_dir``.

    Raises:
      ConfigError: unknown benchmark, or a language its prompt does not cover.
      MissingFileError: no file of the language under ``data_dir``.
    """
    entry = registry.check([benchmark], [lang])[0]
    files = registry.benchmark_files(data_dir, benchmark, lang)
    read = functools.lru_cache(maxsize=None)(lambda split: entry.read(files[split], lang))

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        del shuffle_files, seed  # evaluation reads items in file order
        return _items_dataset(read(split))

    name = f"{benchmark}_{lang}"
    seqio.TaskRegistry.remove(name)
    return seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(dataset_fn, splits=list(files)),
        output_features={},
        metric_fns=entry.metrics(lang, options or registry.Options()),
    )


def task_items(task: seqio.Task, split: str) -> list[dict]:
    """A structured task's items as Python dicts (strings decoded)."""

    def decode(value: Any) -> Any:
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, np.ndarray):
            return [decode(v) for v in value.tolist()]
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value.item() if isinstance(value, np.generic) else value

    dataset = task.source.get_dataset(split=split, shuffle=False)
    return [{k: decode(v) for k, v in ex.items()} for ex in dataset.as_numpy_iterator()]


# --- scoring ----------------------------------------------------------------------------------


def encode_pair(
    encode: Callable[[str], list[int]],
    context: str,
    continuation: str,
    prefix_id: int | None = None,
) -> tuple[list[int], list[int]]:
    """Context and continuation ids as lm-evaluation-harness splits them.

    An empty context is the model's prefix token (``prefix_id``: BOS, else EOS), unless the
    continuation's own first token is that token, which then becomes the context (the
    harness's ``TemplateLM.loglikelihood``).

    Raises:
      ValueError: an empty context and no ``prefix_id``.
    """
    if context == "":
        if prefix_id is None:
            raise ValueError("encode_pair: an empty context needs a prefix token id")
        ids = encode(continuation)
        return ([prefix_id], ids) if ids[:1] != [prefix_id] else (ids[:1], ids[1:])
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = encode(context + continuation)
    context_ids = encode(context)
    return context_ids, whole[len(context_ids) :]


def loglikelihoods(
    model: LanguageModel,
    requests: Sequence[tuple[list[int], list[int]]],
    batch_size: int = 16,
    prefix: Sequence[int] = (),
) -> list[float]:
    """Summed log-probability of each continuation given its context.

    Args:
      model: the model, on its mesh.
      requests: ``(context ids, continuation ids)``; an empty context needs a ``prefix``.
      batch_size: requests per forward pass.
      prefix: ids put before every context (e.g. a BOS token).
    """
    rows = [(list(prefix) + c, t) for c, t in requests]
    if any(not c or not t for c, t in rows):
        raise ValueError("loglikelihoods: every request needs context and continuation tokens")
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]) - len(rows[i][1]))
    out = [0.0] * len(rows)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = decoding.bucket_length(max(len(rows[i][0]) + len(rows[i][1]) for i in chunk))
        tokens = np.zeros((len(chunk), width), np.int32)
        weights = np.zeros((len(chunk), width), np.float32)
        for row, i in enumerate(chunk):
            context, continuation = rows[i]
            tokens[row, : len(context) + len(continuation)] = context + continuation
            weights[row, len(context) : len(context) + len(continuation)] = 1.0
        scores = model.score(tokens[:, :-1], tokens[:, 1:], weights[:, 1:])  # [rows, width - 1]
        for i, total in zip(chunk, scores.sum(axis=1).tolist(), strict=True):
            out[i] = total
    return out


def choice_requests(item: dict) -> list[tuple[str, str]]:
    """An item's ``(context, continuation)`` texts, one per choice, as the harness builds them.

    Usually one context and each choice after the target delimiter (the item's ``delimiter``,
    default ``" "``); a multiple-input item (with a ``continuation``, XWinograd) has each
    choice as a context and the delimiter and shared continuation after every one.
    """
    delimiter = item.get("delimiter", " ")
    if "continuation" in item:
        return [(choice, delimiter + item["continuation"]) for choice in item["choices"]]
    return [(item["context"], delimiter + choice) for choice in item["choices"]]


def choice_scores(
    model: LanguageModel,
    encode: Callable[[str], list[int]],
    items: Sequence[dict],
    batch_size: int = 16,
    prefix: Sequence[int] = (),
    prefix_id: int | None = None,
) -> list[list[float]]:
    """Per item, the log-likelihood of each choice's request (:func:`choice_requests`);
    ``prefix_id`` is the context of an empty one (:func:`encode_pair`)."""
    requests = [
        encode_pair(encode, context, continuation, prefix_id)
        for item in items
        for context, continuation in choice_requests(item)
    ]
    flat = loglikelihoods(model, requests, batch_size, prefix)
    scores, at = [], 0
    for item in items:
        scores.append(flat[at : at + len(item["choices"])])
        at += len(item["choices"])
    return scores


def answers(
    model: ChatModel,
    items: Sequence[dict],
    batch_size: int = 8,
    max_new_tokens: int = 32,
) -> list[str]:
    """Greedy answers to each item's prompt (plain text, no chat template).

    By default cut at the first newline and stripped (XQuAD); an item with its own ``stop``
    strings and ``max_new_tokens`` (MGSM, as the harness's ``generate_until``) is cut at the
    first of them and kept as generated.
    """
    out = []
    for (stops, limit), group in itertools.groupby(
        items, key=lambda i: (tuple(i.get("stop", ())), i.get("max_new_tokens", max_new_tokens))
    ):
        group = list(group)
        sampling = decoding.Sampling(stop_strings=stops or ("\n",))
        for start in range(0, len(group), batch_size):
            chunk = group[start : start + batch_size]
            prompts = [model.vocabulary.encode(item["prompt"]) for item in chunk]
            generation = model.generate(prompts, limit, sampling)
            for tokens in generation.tokens:
                text, _ = decoding.cut_at_stop_strings(model.decode(tokens), sampling.stop_strings)
                out.append(text if stops else text.strip())
    return out


def check_split(task: seqio.Task, split: str) -> None:
    """Raises ConfigError when ``task`` has no file for ``split``."""
    if split not in task.splits:
        raise ConfigError(f"{task.name} has no split {split!r} (have {', '.join(task.splits)})")


def run_task(
    task_name: str,
    split: str,
    model: ChatModel,
    batch_size: int = 16,
    max_new_tokens: int = 32,
    limit: int | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """Runs one structured task: its metrics and one row per item.

    A row holds id, lang, task, the label and scores (choice items) or the answers and
    prediction (answer items), and each metric's per-item values (what the report aggregates).
    A choice item whose log-likelihoods are not all finite has failed: its row has ``status:
    "failed"`` and a ``reason`` instead of metric values, the metrics leave it out, ``n``
    counts the items they cover and ``failed`` (present only when some did) the failed ones.
    """
    task = seqio.get_mixture_or_task(task_name)
    check_split(task, split)
    items = task_items(task, split)[:limit]
    if not items:
        raise ConfigError(f"{task_name} {split}: no items to evaluate (limit {limit})")
    if "choices" in items[0]:
        outputs = choice_scores(
            model, model.vocabulary.encode, items, batch_size, prefix_id=prefix_token_id(model)
        )
        targets = [metrics.ChoiceTarget(i["label"], tuple(i["choices"])) for i in items]
        metric_fns = task.score_metric_fns
        fields = [{"scores": s, "label": int(t)} for s, t in zip(outputs, targets, strict=True)]
    else:
        outputs = answers(model, items, batch_size, max_new_tokens)
        targets, metric_fns = [item["answers"] for item in items], task.predict_metric_fns
        fields = [{"prediction": p, "answers": t} for p, t in zip(outputs, targets, strict=True)]
    failed = [_failure(output) for output in outputs]
    kept = [i for i, reason in enumerate(failed) if reason is None]
    result: dict[str, float] = {}
    for metric_fn in metric_fns:
        result.update(metric_fn([targets[i] for i in kept], [outputs[i] for i in kept]))
    rows = []
    for item, field, target, output, reason in zip(
        items, fields, targets, outputs, failed, strict=True
    ):
        row = {"id": item["id"], "lang": item["lang"], "task": task_name, **field}
        if reason is not None:
            row.update(status="failed", reason=reason, scores=[None] * len(output))
        else:
            for metric_fn in metric_fns:
                row.update(metric_fn.per_item(target, output))
        rows.append(row)
    counts = {"n": float(len(kept))}
    if len(kept) < len(items):
        counts["failed"] = float(len(items) - len(kept))
    return {**result, **counts}, rows


def prefix_token_id(model: ChatModel) -> int:
    """The token an empty context is scored after: the vocabulary's BOS, else its first EOS
    (the harness's ``prefix_token_id``).

    The vocabulary's BOS is the one its tokenizer puts before a text; a tokenizer that names a
    BOS token without adding it gets its EOS here, where the harness would take the named BOS.
    """
    bos = getattr(model.vocabulary, "bos_id", None)
    return int(bos) if bos is not None and bos >= 0 else model.stop_ids[0]


def _failure(output: Any) -> str | None:
    """Why an item's model output cannot be scored (non-finite choice scores), or None."""
    if isinstance(output, str) or np.all(np.isfinite(np.asarray(output, np.float64))):
        return None
    return "non-finite log-likelihood"


def write_rows(path: str | pathlib.Path, rows: Sequence[dict]) -> None:
    """Writes rows as JSONL, atomically (a temporary file renamed over ``path``)."""
    storage.write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def evaluate(
    task_name: str,
    split: str,
    model: ChatModel,
    output_path: str | pathlib.Path | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 32,
    limit: int | None = None,
) -> dict[str, float]:
    """Runs one structured task and returns its metrics; with ``output_path``, also writes its
    rows (:func:`run_task`) there as JSONL."""
    result, rows = run_task(task_name, split, model, batch_size, max_new_tokens, limit)
    if output_path is not None:
        write_rows(output_path, rows)
    return result
