"""The model a run trained, ready to use: :class:`ChatModel`.

A :class:`ChatModel` owns everything a stage needs to talk to a trained model: the decoder, its
parameters placed on a mesh by the logical axis rules training used, the vocabulary, the chat
template and the tokens that end an answer. ``infer``, ``eval`` and the studies' benchmarks,
``serve``, the local judge and translation backends and the demo all get their model from
:meth:`ChatModel.load`, so every stage renders and tokenizes a run's conversations the same way.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Sequence
from typing import Any

import seqio
from jax.sharding import Mesh

from polyglot_jax.data import pipeline, templates
from polyglot_jax.errors import ConfigError, RunDirError
from polyglot_jax.models import Decoder
from polyglot_jax.runtime import decoding
from polyglot_jax.runtime.model import LanguageModel, inference_dtype
from polyglot_jax.runtime.quantization import check as check_quantization
from polyglot_jax.runtime.quantization import quantize
from polyglot_jax.training import partitioning, runs

log = logging.getLogger(__name__)

HF_TOKENIZERS = ("tokenizer.model", "tokenizer.json")  # a folder with neither has no tokenizer
Messages = Sequence[dict]  # [{"role": "system" | "user" | "assistant", "content": str}, ...]


def _registered(name: str) -> bool:
    return name in seqio.MixtureRegistry.names() or name in seqio.TaskRegistry.names()


def _mixture_vocabulary(name: str) -> seqio.Vocabulary:
    """The vocabulary of a task or mixture, importing ``tasks`` when it is not registered."""
    if not _registered(name):
        importlib.import_module("tasks")
    if not _registered(name):
        raise ConfigError(f"no registered task or mixture {name!r} to take the vocabulary from")
    vocabulary = pipeline.vocabulary_of(name)
    return getattr(vocabulary, "resolved", vocabulary)  # a lazily bound study vocabulary


def same_tokenizer(a: Any, b: Any) -> bool:
    """Whether two vocabularies tokenize alike: the same tokenizer files, or equal vocabularies.

    A run's recorded copy of a tokenizer folder equals the folder it was copied from.
    """
    from polyglot_jax.data import vocab

    folders = vocab.source_folder(a), vocab.source_folder(b)
    if None in folders:
        return a == b

    def content(folder: Any) -> dict[str, bytes]:
        files = [folder / name for name in vocab.TOKENIZER_FILES]
        return {f.name: f.read_bytes() for f in files if f.exists()}

    return content(folders[0]) == content(folders[1])


def model_vocabulary(
    source: runs.Source, mixture_or_task_name: str | None = None, check: bool = True
) -> Any:
    """The vocabulary of a model, by the one rule :class:`ChatModel` documents.

    Args:
      source: the resolved model path.
      mixture_or_task_name: a task or mixture the user named (``--mixture``, ``infer``'s
        prompts); used only by a run that records no vocabulary.
      check: refuse a named task or mixture that tokenizes differently from the run.

    Raises:
      RunDirError: a run that records no vocabulary, and no task or mixture was named.
      ConfigError: the named task or mixture tokenizes differently from the run.
    """
    from polyglot_jax.data import vocab

    if source.hf_dir is not None:
        has_tokenizer = any((source.hf_dir / f).exists() for f in HF_TOKENIZERS)
        if has_tokenizer or mixture_or_task_name is None:
            return vocab.load_vocabulary(source.hf_dir)
        log.info("%s has no tokenizer: vocabulary of %s", source.path, mixture_or_task_name)
        return _mixture_vocabulary(mixture_or_task_name)
    recorded = runs.recorded_tokenizer(source.run_dir)
    trained_on = source.chat_format().get("mixture_or_task_name")
    if recorded is None and trained_on is not None:
        if not _registered(trained_on):
            importlib.import_module("tasks")
        if _registered(trained_on):
            recorded = _mixture_vocabulary(trained_on)
    if recorded is None:
        if mixture_or_task_name is None:
            raise RunDirError(
                f"{source.run_dir}: the run records neither a {runs.TOKENIZER}/ folder nor a "
                f"registered mixture ({trained_on}); pass the task or mixture it was trained with"
            )
        log.info("%s: vocabulary of %s (the run records none)", source.path, mixture_or_task_name)
        return _mixture_vocabulary(mixture_or_task_name)
    if (
        check
        and mixture_or_task_name is not None
        and not same_tokenizer(_mixture_vocabulary(mixture_or_task_name), recorded)
    ):
        raise ConfigError(
            f"{mixture_or_task_name} tokenizes differently from the run {source.run_dir} "
            f"(trained on {trained_on}); leave the mixture out to use the run's own vocabulary"
        )
    return recorded


def encode_messages(vocabulary: Any, messages: Messages, template: str) -> list[int]:
    """Prompt ids: the conversation rendered up to the assistant's turn, as in training.

    After the tokenizer's BOS when it adds one; with the ``"tokenizer"`` template, as
    ``apply_chat_template`` gives them. A trailing assistant message is dropped, so a training
    example encodes to its own prompt.
    """
    segments = templates.render(
        list(messages), template, add_generation_prompt=True, vocabulary=vocabulary
    )
    return templates.encode(vocabulary, segments, template)[0]


class ChatModel(LanguageModel):
    """A decoder, its placed parameters, vocabulary, chat template and stop tokens.

    **The vocabulary rule.** A Hugging Face folder's vocabulary is its tokenizer (for a folder
    saved without one, the task or mixture the caller names). A run's is,
    first, the tokenizer files it recorded in ``<run>/tokenizer/`` while training; then the
    vocabulary of the task or mixture its ``chat_format.json`` names (``import tasks``
    registers it; the demo's SentencePiece model is not a tokenizer folder, so demo runs take
    this way); only a run that records neither uses a task or mixture the caller names. A named
    task or mixture that tokenizes differently from what the run records is refused: two
    stages never tokenize one run differently.

    **The chat template** is the one the run recorded (``CHAT_TEMPLATE`` while training), else
    the configured default (:func:`templates.chat_format`, ``guanaco`` unless gin sets it).

    **Stop tokens** are the vocabulary's end-of-sequence ids.

    Args:
      decoder: the Flax module.
      params: its parameters, placed on ``mesh`` (:meth:`load` reads each into its shard).
      vocabulary: a SeqIO vocabulary (:mod:`polyglot_jax.data.vocab`).
      template: chat template name (:data:`templates.TEMPLATES` or ``"tokenizer"``).
      mesh: the device mesh, or None for the default device.
      rules: logical axis rules (default: the standard rules, as in training).
    """

    def __init__(
        self,
        decoder: Decoder,
        params: Any,
        vocabulary: Any,
        template: str | None = None,
        mesh: Mesh | None = None,
        rules: partitioning.AxisRules | None = None,
    ) -> None:
        super().__init__(decoder, params, mesh, rules)
        self.vocabulary = vocabulary
        self.template = template or templates.chat_format()[0]
        eos = vocabulary.eos_id
        self.stop_ids: list[int] = [eos] if isinstance(eos, int) else list(eos)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        mesh: Mesh | None = None,
        rules: partitioning.AxisRules | None = None,
        mixture_or_task_name: str | None = None,
        check_mixture: bool = True,
        dtype: str = "auto",
        quantization: str = "none",
    ) -> ChatModel:
        """The model at a run, ``checkpoint_<step>`` or Hugging Face folder.

        The vocabulary is settled first (a run without one fails before any weight is read);
        then each array is read straight into its shard on ``mesh``.

        Args:
          path: run directory (its latest checkpoint), ``.../checkpoint_<step>`` or a Hugging
            Face model folder.
          mesh: where the parameters live (None: the default device).
          rules: logical axis rules for ``mesh`` (default: the standard rules).
          mixture_or_task_name: the vocabulary for a run that records none (see the class).
          check_mixture: refuse ``mixture_or_task_name`` when it tokenizes differently from the
            run (``infer`` names its prompts' task, whose vocabulary it never uses otherwise,
            and turns this off).
          dtype: the weights' and activations' dtype
            (:func:`~polyglot_jax.runtime.model.inference_dtype`: ``auto`` is bfloat16 on a
            GPU or TPU, the checkpoint's own on CPU).
          quantization: ``none`` or ``int8`` (weight-only, per output channel:
            :func:`~polyglot_jax.runtime.quantization.quantize`).
        """
        check_quantization(quantization)  # before anything is read
        source = runs.resolve(path)
        vocabulary = model_vocabulary(source, mixture_or_task_name, check_mixture)
        model = cls(None, None, vocabulary, source.chat_format().get("template"), mesh, rules)  # type: ignore[arg-type]
        with model.context():
            model.decoder, model.params = runs.load_model(source.path, dtype=inference_dtype(dtype))
        model.decoder, model.params = quantize(
            model.decoder, model.params, quantization, mesh, model.rules
        )
        return model

    def encode(self, messages: Messages) -> list[int]:
        """Prompt ids of a conversation up to the assistant's turn (:func:`encode_messages`)."""
        return encode_messages(self.vocabulary, messages, self.template)

    def decode(self, tokens: Sequence[int]) -> str:
        """The text of ``tokens`` (ids past the vocabulary's end are dropped by the tokenizer)."""
        return self.vocabulary.decode(list(tokens))

    @property
    def pad_id(self) -> int:
        """The id that pads prompts."""
        return int(getattr(self.vocabulary, "pad_id", 0) or 0)

    def generate(  # type: ignore[override]
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int,
        sampling: decoding.Sampling | None = None,
        seeds: Sequence[int] | None = None,
    ) -> decoding.Generation:
        """Continuations of token ``prompts`` until a stop token (see :func:`decoding.generate`)."""
        return super().generate(
            prompts, max_new_tokens, self.stop_ids, sampling, seeds, self.pad_id
        )

    def respond(
        self,
        conversations: Sequence[Messages],
        max_new_tokens: int,
        sampling: decoding.Sampling | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[tuple[str, str, int]]:
        """The next assistant turn of each conversation.

        Returns:
          ``(text, finish_reason, num_tokens)`` per conversation; the text is cut at the first
          of ``sampling.stop_strings`` (then the reason is ``"stop"``).
        """
        sampling = sampling or decoding.Sampling()
        out = self.generate(
            [self.encode(c) for c in conversations], max_new_tokens, sampling, seeds
        )
        answers = []
        for tokens, reason in zip(out.tokens, out.finish_reasons, strict=True):
            text, stopped = decoding.cut_at_stop_strings(self.decode(tokens), sampling.stop_strings)
            answers.append((text, "stop" if stopped else reason, len(tokens)))
        return answers
