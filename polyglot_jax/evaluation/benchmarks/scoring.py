"""Structured benchmarks: XCOPA and XNLI by log-likelihood, XQuAD by generation.

Each (benchmark, language) is a SeqIO task (``xcopa_et``, ``xnli_de``, ``xquad_zh``) whose
source yields the items of :mod:`structured_data` and whose metric functions follow SeqIO's
protocol: ``score_metric_fns`` take ``(targets, scores)`` (gold choice, per-choice
log-likelihoods), ``predict_metric_fns`` take ``(targets, predictions)`` (gold answers, generated
text). :func:`evaluate` computes the scores or predictions with our model and calls them.

Scoring follows lm-evaluation-harness: the continuation is ``" " + choice``, trailing spaces of
the context move to the continuation, the continuation's tokens are those of
``encode(context + continuation)`` after ``len(encode(context))`` tokens, and an item's
prediction is the choice with the largest summed log-probability.

XQuAD answers are greedy, cut at the first newline, and scored with SQuAD's exact match and F1
after normalisation (lower case, no punctuation, no articles where the language has them).
Characters of scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar) count as
one token each, as in MLQA's evaluation.
"""

from __future__ import annotations

import collections
import functools
import json
import pathlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import seqio
import tensorflow as tf

from polyglot_jax.errors import ConfigError, MissingFileError
from polyglot_jax.evaluation.benchmarks import readers
from polyglot_jax.inference import decoding
from polyglot_jax.models import Decoder

BENCHMARKS = ("xcopa", "xnli", "xquad")

# --- metrics ---------------------------------------------------------------------------------


def choice_accuracy(targets: Sequence[int], scores: Sequence[Sequence[float]]) -> dict:
    """SeqIO score metric: share of items whose best-scored choice is the gold one."""
    correct = [int(np.argmax(s)) == int(t) for t, s in zip(targets, scores, strict=True)]
    return {"accuracy": 100.0 * float(np.mean(correct)) if correct else float("nan")}


_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
}
_UNSPACED = re.compile(
    r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff])"
)


def squad_tokens(text: str, lang: str) -> list[str]:
    """Normalised tokens of an answer (see the module docstring)."""
    text = text.lower()
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    if lang in _ARTICLES:
        text = re.sub(_ARTICLES[lang], " ", text)
    return _UNSPACED.sub(r" \1 ", text).split()


def squad_scores(prediction: str, answers: Sequence[str], lang: str) -> tuple[float, float]:
    """``(exact match, F1)`` of one prediction against its best gold answer, each 0 or 0..1."""
    predicted = squad_tokens(prediction, lang)
    best_em, best_f1 = 0.0, 0.0
    for answer in answers:
        gold = squad_tokens(answer, lang)
        best_em = max(best_em, float(predicted == gold))
        common = sum((collections.Counter(predicted) & collections.Counter(gold)).values())
        if common:
            precision, recall = common / len(predicted), common / len(gold)
            best_f1 = max(best_f1, 2 * precision * recall / (precision + recall))
    return best_em, best_f1


def squad_metric(lang: str) -> Callable[[Sequence[Sequence[str]], Sequence[str]], dict]:
    """SeqIO predict metric for ``lang``: mean exact match and F1 (0-100)."""

    def metric_fn(targets: Sequence[Sequence[str]], predictions: Sequence[str]) -> dict:
        pairs = [squad_scores(p, t, lang) for t, p in zip(targets, predictions, strict=True)]
        em, f1 = np.mean(pairs, axis=0) if pairs else (float("nan"), float("nan"))
        return {"exact_match": 100.0 * float(em), "f1": 100.0 * float(f1)}

    return metric_fn


# --- SeqIO tasks ------------------------------------------------------------------------------


def benchmark_files(data_dir: str | pathlib.Path, benchmark: str, lang: str) -> dict[str, Any]:
    """``split → file`` of one benchmark language under ``data_dir`` (``../shared/data``).

    XCOPA ``xcopa/<lang>/{val,test}.<lang>.jsonl``; XQuAD ``xquad/xquad.<lang>.json`` (test);
    XNLI ``xnli/xnli.{dev,test}.tsv`` or ``xnli/<lang>/{validation,test}.{jsonl,parquet}``.
    """
    root = pathlib.Path(data_dir) / benchmark
    if benchmark == "xcopa":
        candidates = {s: root / lang / f"{f}.{lang}.jsonl" for s, f in _XCOPA_SPLITS.items()}
    elif benchmark == "xquad":
        candidates = {"test": root / f"xquad.{lang}.json"}
    elif benchmark == "xnli":
        candidates = {}
        for split, tsv in (("validation", "xnli.dev.tsv"), ("test", "xnli.test.tsv")):
            hf = [root / lang / f"{split}.{ext}" for ext in ("jsonl", "parquet")]
            candidates[split] = next((p for p in hf if p.exists()), root / tsv)
    else:
        raise ConfigError(f"unknown benchmark {benchmark!r}; choose from {', '.join(BENCHMARKS)}")
    files = {split: path for split, path in candidates.items() if path.exists()}
    if not files:
        raise MissingFileError(
            f"{benchmark} {lang}: none of {', '.join(map(str, candidates.values()))} exists"
        )
    return files


_XCOPA_SPLITS = {"validation": "val", "test": "test"}


def read_items(benchmark: str, path: pathlib.Path, lang: str) -> list[dict]:
    """The items of one benchmark file."""
    if benchmark == "xcopa":
        return readers.read_xcopa(path, lang)
    if benchmark == "xquad":
        return readers.read_xquad(path, lang)
    if path.suffix == ".tsv":
        return readers.read_xnli_tsv(path, lang)
    return readers.read_xnli_hf(path, lang)


def _items_dataset(items: list[dict]) -> tf.data.Dataset:
    text_lists = "choices" if "choices" in items[0] else "answers"
    features = {
        "id": tf.constant([i["id"] for i in items]),
        "lang": tf.constant([i["lang"] for i in items]),
        text_lists: tf.ragged.constant([i[text_lists] for i in items], dtype=tf.string),
    }
    if "choices" in items[0]:
        features["context"] = tf.constant([i["context"] for i in items])
        features["label"] = tf.constant([i["label"] for i in items], tf.int32)
    else:
        features["prompt"] = tf.constant([i["prompt"] for i in items])
    return tf.data.Dataset.from_tensor_slices(features)


def register_task(benchmark: str, lang: str, data_dir: str | pathlib.Path) -> seqio.Task:
    """Registers (or replaces) the SeqIO task ``<benchmark>_<lang>`` over ``data_dir``."""
    files = benchmark_files(data_dir, benchmark, lang)
    read = functools.lru_cache(maxsize=None)(
        lambda split: read_items(benchmark, files[split], lang)
    )

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        del shuffle_files, seed  # evaluation reads items in file order
        return _items_dataset(read(split))

    metric = {"predict_metric_fns": [squad_metric(lang)]} if benchmark == "xquad" else {}
    name = f"{benchmark}_{lang}"
    seqio.TaskRegistry.remove(name)
    return seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(dataset_fn, splits=list(files)),
        output_features={},
        metric_fns=metric.get("predict_metric_fns", [choice_accuracy]),
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
    encode: Callable[[str], list[int]], context: str, continuation: str
) -> tuple[list[int], list[int]]:
    """Context and continuation ids as lm-evaluation-harness splits them."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = encode(context + continuation)
    context_ids = encode(context)
    return context_ids, whole[len(context_ids) :]


@functools.partial(jax.jit, static_argnames=("model",))
def _continuation_logprobs(
    model: Decoder,
    params: Any,
    tokens: jax.Array,  # [batch, length] right-padded
    weights: jax.Array,  # [batch, length] 1 where tokens[:, t] is a continuation token
) -> tuple[jax.Array, jax.Array]:
    logits, _ = model.apply({"params": params}, tokens[:, :-1])  # [batch, length - 1, vocab]
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    targets, mask = tokens[:, 1:], weights[:, 1:]
    token_logp = jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    greedy = jnp.all((jnp.argmax(logp, axis=-1) == targets) | (mask == 0), axis=-1)
    return jnp.sum(token_logp * mask, axis=-1), greedy  # [batch], [batch]


def loglikelihoods(
    model: Decoder,
    params: Any,
    requests: Sequence[tuple[list[int], list[int]]],
    batch_size: int = 16,
    prefix: Sequence[int] = (),
) -> list[float]:
    """Summed log-probability of each continuation given its context.

    Args:
      requests: ``(context ids, continuation ids)``; an empty context needs a ``prefix``.
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
        totals, _ = _continuation_logprobs(model, params, jnp.asarray(tokens), jnp.asarray(weights))
        for i, total in zip(chunk, np.asarray(totals).tolist(), strict=True):
            out[i] = total
    return out


def choice_scores(
    model: Decoder,
    params: Any,
    encode: Callable[[str], list[int]],
    items: Sequence[dict],
    batch_size: int = 16,
    prefix: Sequence[int] = (),
) -> list[list[float]]:
    """Per item, the log-likelihood of ``" " + choice`` after its context, for every choice."""
    requests = [
        encode_pair(encode, item["context"], " " + choice)
        for item in items
        for choice in item["choices"]
    ]
    flat = loglikelihoods(model, params, requests, batch_size, prefix)
    scores, at = [], 0
    for item in items:
        scores.append(flat[at : at + len(item["choices"])])
        at += len(item["choices"])
    return scores


def answers(
    model: Decoder,
    params: Any,
    vocabulary: seqio.Vocabulary,
    items: Sequence[dict],
    batch_size: int = 8,
    max_new_tokens: int = 32,
) -> list[str]:
    """Greedy answers to each item's prompt, cut at the first newline."""
    out = []
    sampling = decoding.Sampling(stop_strings=("\n",))
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        prompts = [vocabulary.encode(item["prompt"]) for item in chunk]
        generation = decoding.generate(
            model, params, prompts, max_new_tokens, vocabulary.eos_id, sampling
        )
        for tokens in generation.tokens:
            text, _ = decoding.cut_at_stop_strings(vocabulary.decode(tokens), sampling.stop_strings)
            out.append(text.strip())
    return out


def evaluate(
    task_name: str,
    split: str,
    model: Decoder,
    params: Any,
    vocabulary: seqio.Vocabulary,
    output_path: str | pathlib.Path | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 32,
    limit: int | None = None,
) -> dict[str, float]:
    """Runs one structured task and returns its metrics.

    With ``output_path``, writes one JSONL line per item: id, lang, label or answers, and the
    scores or prediction with per-item metric values (what the report aggregates).
    """
    task = seqio.get_mixture_or_task(task_name)
    items = task_items(task, split)[:limit]
    benchmark = task_name.split("_")[0]
    if "choices" in items[0]:
        scores = choice_scores(model, params, vocabulary.encode, items, batch_size)
        targets = [item["label"] for item in items]
        result = {}
        for metric_fn in task.score_metric_fns:
            result.update(metric_fn(targets, scores))
        rows = [
            {
                "scores": s,
                "label": t,
                f"{benchmark}_acc": float(int(np.argmax(s)) == t),
            }
            for s, t in zip(scores, targets, strict=True)
        ]
    else:
        predictions = answers(model, params, vocabulary, items, batch_size, max_new_tokens)
        targets = [item["answers"] for item in items]
        result = {}
        for metric_fn in task.predict_metric_fns:
            result.update(metric_fn(targets, predictions))
        lang = items[0]["lang"]
        rows = []
        for prediction, gold in zip(predictions, targets, strict=True):
            em, f1 = squad_scores(prediction, gold, lang)
            rows.append({"prediction": prediction, "answers": gold, "xquad_em": em, "xquad_f1": f1})
    if output_path is not None:
        path = pathlib.Path(output_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for item, row in zip(items, rows, strict=True):
                line = {"id": item["id"], "lang": item["lang"], "task": task_name, **row}
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return {**result, "n": float(len(items))}
