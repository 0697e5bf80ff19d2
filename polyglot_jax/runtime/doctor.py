"""Checks of how a model's conversations are framed, before training or serving it.

:func:`diagnose` renders one conversation through the chat template exactly as training
encodes it (:func:`preprocessors.encode_conversation`) and checks what silently spoils a
fine-tune or its answers: a BOS missing or doubled, an answer whose last trained token is not
a stop token, padding that shares the EOS id without being masked, a loss mask with no
assistant token, ids past the model's embedding, and a template that ``infer`` and ``serve``
would render differently from training. The vocabulary, template and stop tokens are those of
:class:`~polyglot_jax.runtime.chat_model.ChatModel` (no weights are read). Tokenizer fertility
(tokens per word) is reported per language on evaluation prompts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from polyglot_jax.data import preprocessors, templates
from polyglot_jax.errors import DataError
from polyglot_jax.runtime.chat_model import ChatModel, model_vocabulary
from polyglot_jax.training import runs

OK, WARN, FAIL, INFO, SKIP = "ok", "warn", "FAIL", "info", "skip"
SAMPLE: tuple[dict[str, str], ...] = (
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "Rome is the capital of Italy."},
)
UNSPACED = frozenset({"zh", "ja", "th", "my", "km", "lo", "bo"})  # fertility per character
PROMPTS_DIR = "../shared/data/oasst_prompts"
MAX_PROMPTS = 200


@dataclasses.dataclass(frozen=True)
class Check:
    """One row of the doctor's table.

    Attributes:
      name: the check (``bos``, ``assistant_mask``, ``end_of_turn``, ``eos_pad``, ...).
      status: ``ok``, ``warn``, ``FAIL``, ``info`` or ``skip``; only ``FAIL`` fails.
      detail: what was found, with ids and token pieces.
    """

    name: str
    status: str
    detail: str


@dataclasses.dataclass(frozen=True)
class Report:
    """What :func:`diagnose` found.

    Attributes:
      model: the path checked.
      template: the template the conversation was rendered with.
      rendered: the rendered conversation, trained text in ``«»``.
      checks: the table's rows.
    """

    model: str
    template: str
    rendered: str
    checks: tuple[Check, ...]

    @property
    def failures(self) -> list[str]:
        """One line per failed check."""
        return [f"{c.name}: {c.detail}" for c in self.checks if c.status == FAIL]

    def table(self) -> str:
        """The checks as a Markdown table."""
        lines = ["| check | status | detail |", "|---|---|---|"]
        lines += [f"| {c.name} | {c.status} | {c.detail.replace('|', '/')} |" for c in self.checks]
        return "\n".join(lines)


def _piece(vocabulary: Any, token: int) -> str:
    info = getattr(vocabulary, "info", None)
    special = {i: text for text, i in info.special_tokens} if info is not None else {}
    if int(token) in special:
        return repr(special[int(token)])
    try:
        return repr(vocabulary.decode([int(token)]) or f"<{token}>")
    except Exception:  # an id past the tokenizer: shown by number
        return f"<{token}>"


def _bos(vocabulary: Any, ids: Sequence[int]) -> Check:
    info = getattr(vocabulary, "info", None)
    if info is None:
        return Check("bos", OK, "none: a SeqIO vocabulary, the decoder starts from id 0")
    named = dict(info.template_variables).get("bos_token")
    special = dict(info.special_tokens)
    if info.bos_id is None:
        if named is not None and named in special and special[named] not in ids:
            return Check(
                "bos",
                FAIL,
                f"the tokenizer has {named!r} (id {special[named]}) but the conversation starts "
                f"without it (first token {_piece(vocabulary, ids[0])})",
            )
        return Check("bos", OK, "none: the tokenizer adds no BOS and defines none")
    count = list(ids).count(info.bos_id)
    where = f"{_piece(vocabulary, info.bos_id)} (id {info.bos_id})"
    if count == 1 and ids[0] == info.bos_id:
        return Check("bos", OK, f"{where} once, first")
    return Check("bos", FAIL, f"{where} appears {count} times, first token id {ids[0]}")


def _end_of_turn(vocabulary: Any, ids: np.ndarray, mask: np.ndarray, stops: list[int]) -> Check:
    trained = np.flatnonzero(mask == preprocessors.TARGET)
    if not len(trained):
        return Check("end_of_turn", SKIP, "no trained token")
    last = int(ids[trained[-1]])
    token = f"{_piece(vocabulary, last)} (id {last})"
    if last not in stops:
        return Check(
            "end_of_turn",
            FAIL,
            f"the answer's last trained token {token} is not a stop token {stops}: the model "
            "never learns to stop",
        )
    return Check("end_of_turn", OK, f"the answer ends with {token}, trained and a stop token")


def _loss_weights(ids: np.ndarray, mask: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Loss weights and target ids of one example padded to ``length`` by the training converter."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensors(
        {"targets": tf.constant(ids, tf.int32), "loss_mask": tf.constant(mask, tf.int32)}
    )
    converter = preprocessors.ChatFeatureConverter(pack=False)
    out = next(iter(converter(ds, {"targets": length}).as_numpy_iterator()))
    return np.asarray(out["decoder_loss_weights"]), np.asarray(out["decoder_target_tokens"])


def _eos_pad(model: ChatModel, ids: np.ndarray, mask: np.ndarray) -> Check:
    eos, pad = model.stop_ids[0], model.pad_id
    if eos != pad:
        return Check("eos_pad", OK, f"EOS id {eos} differs from pad id {pad}")
    weights, targets = _loss_weights(ids, mask, len(ids) + 8)
    real = int(np.count_nonzero(mask != preprocessors.START))
    padding_weight = int(weights[real:].sum())
    eos_weight = int(weights[real - 1]) if targets[real - 1] == eos else 0
    if padding_weight == 0 and eos_weight == 1:
        return Check(
            "eos_pad",
            WARN,
            f"pad == EOS (id {eos}): padding has loss weight 0 and the answer's EOS weight 1 "
            "(the loss follows loss_mask, not the pad id)",
        )
    return Check(
        "eos_pad",
        FAIL,
        f"pad == EOS (id {eos}) and the padded example weights padding {padding_weight}, "
        f"its EOS {eos_weight}",
    )


def _template(source: runs.Source, model: ChatModel, chosen: str) -> Check:
    recorded = source.chat_format().get("template")
    if not recorded:  # a Hugging Face folder or a run that records none
        return Check(
            "template",
            OK,
            f"rendered with {chosen}; none recorded: training records its CHAT_TEMPLATE in "
            f"chat_format.json, infer/serve use it (ChatModel.template, now {model.template})",
        )
    shown = f"training {recorded} (chat_format.json), infer/serve {model.template} (ChatModel)"
    if chosen != model.template or recorded != model.template:
        return Check("template", FAIL, f"rendered with {chosen}, but {shown}")
    return Check("template", OK, shown)


def prompt_texts(folder: str | os.PathLike, language: str, limit: int = MAX_PROMPTS) -> list[str]:
    """Up to ``limit`` prompts of ``<folder>/test_<language>.jsonl`` (none when it is absent)."""
    path = pathlib.Path(folder) / f"test_{language}.jsonl"
    if not path.exists():
        return []
    texts = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{path}:{n}: not a JSON line") from None
            text = record.get("prompt") if isinstance(record, dict) else None
            if isinstance(text, str):
                texts.append(text)
            if len(texts) >= limit:
                break
    return texts


def fertility(vocabulary: Any, texts: Sequence[str], language: str) -> tuple[float, str]:
    """Tokens per word (per character for unspaced scripts) of ``texts``, and the unit."""
    tokens = sum(len(vocabulary.encode(t)) for t in texts)
    if language in UNSPACED:
        return tokens / max(1, sum(len("".join(t.split())) for t in texts)), "character"
    return tokens / max(1, sum(len(t.split()) for t in texts)), "word"


def _fertility_checks(vocabulary: Any, languages: Sequence[str], folder: str) -> list[Check]:
    checks = []
    for language in languages:
        texts = prompt_texts(folder, language)
        name = f"fertility[{language}]"
        if not texts:
            checks.append(Check(name, SKIP, f"no prompts in {folder}/test_{language}.jsonl"))
            continue
        value, unit = fertility(vocabulary, texts, language)
        checks.append(Check(name, INFO, f"{value:.2f} tokens per {unit} ({len(texts)} prompts)"))
    return checks


def _rendered(vocabulary: Any, ids: np.ndarray, mask: np.ndarray) -> str:
    parts, run, target = [], [], None
    for token, m in zip(ids.tolist(), mask.tolist(), strict=True):
        flag = m == preprocessors.TARGET
        if flag != target and run:
            text = vocabulary.decode(run)
            parts.append(f"«{text}»" if target else text)
            run = []
        run.append(token)
        target = flag
    if run:
        text = vocabulary.decode(run)
        parts.append(f"«{text}»" if target else text)
    return "".join(parts)


def diagnose(
    path: str | os.PathLike,
    template: str | None = None,
    languages: Sequence[str] = (),
    prompts: str = PROMPTS_DIR,
    mixture_or_task_name: str | None = None,
    loss_on: str | None = None,
) -> Report:
    """Checks a run, checkpoint or Hugging Face folder (no weights are read).

    Args:
      path: the model, as :meth:`ChatModel.load` takes it.
      template: the chat template to render with (default: the ChatModel's).
      languages: languages whose tokenizer fertility is reported.
      prompts: folder of ``test_<lang>.jsonl`` prompt files.
      mixture_or_task_name: the vocabulary of a run that records none.
      loss_on: the loss selection (default: the run's, else the configured one).

    Returns:
      the report; its ``failures`` are empty when every check passed.
    """
    source = runs.resolve(path)
    vocabulary = model_vocabulary(source, mixture_or_task_name)
    model = ChatModel(None, None, vocabulary, source.chat_format().get("template"))  # type: ignore[arg-type]
    chosen = template or model.template
    loss_on = loss_on or source.chat_format().get("loss_on") or templates.chat_format().loss_on
    checks = [_template(source, model, chosen)]
    rendered, framing = framing_checks(
        model, templates.ChatFormat(chosen, loss_on), source.model_config().vocab_size
    )
    checks += [*framing, *_fertility_checks(vocabulary, languages, prompts)]
    return Report(str(path), chosen, rendered, tuple(checks))


def framing_checks(
    model: ChatModel, chat_format: templates.ChatFormat, vocab_size: int | None = None
) -> tuple[str, list[Check]]:
    """The checks of one conversation encoded as training encodes it.

    Args:
      model: gives the vocabulary, stop ids and pad id (its weights are not used).
      chat_format: the template and loss selection training uses.
      vocab_size: the model's embedding rows (None: not checked).

    Returns:
      the rendered conversation (trained text in ``«»``) and the checks.
    """
    vocabulary = model.vocabulary
    chat_format = chat_format.checked()
    stops = ", ".join(f"{_piece(vocabulary, i)} (id {i})" for i in model.stop_ids)
    checks = [
        Check("stop_ids", OK if model.stop_ids else FAIL, f"{stops or 'none'} (ChatModel.stop_ids)")
    ]
    try:
        ids, mask = preprocessors.encode_conversation(vocabulary, chat_format, list(SAMPLE))
    except (DataError, ValueError) as e:
        checks.append(Check("assistant_mask", FAIL, f"the conversation cannot be encoded: {e}"))
        return "", checks
    trained = int(np.count_nonzero(mask == preprocessors.TARGET))
    checks.append(
        Check("assistant_mask", OK, f"{trained} of {len(ids)} tokens trained")
        if trained
        else Check("assistant_mask", FAIL, f"none of {len(ids)} tokens is in the loss mask")
    )
    checks += [
        _bos(vocabulary, ids.tolist()),
        _end_of_turn(vocabulary, ids, mask, model.stop_ids),
        _eos_pad(model, ids, mask),
    ]
    if vocab_size is not None:
        checks.append(_vocab_fits(vocab_size, ids))
    return _rendered(vocabulary, ids, mask), checks


def _vocab_fits(size: int, ids: np.ndarray) -> Check:
    top = int(ids.max()) if len(ids) else -1
    if top >= size:
        return Check("vocab_fits", FAIL, f"token id {top} is past the model's {size} embeddings")
    return Check("vocab_fits", OK, f"largest id {top} < the model's {size} embeddings")
