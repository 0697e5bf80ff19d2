"""Batched generation: one prefill, then one token per step in a jitted ``lax.while_loop``.

Prompts are right-padded to a bucket length; each row continues from its own length, so short
prompts waste no decode steps and need no left padding. Each row samples with its own key
(``fold_in(seed_row, step)``), so a prompt's continuation does not depend on which other prompts
share its batch. :class:`Sampling` holds the decoding settings:

- greedy when ``temperature == 0``, else ``softmax(logits / temperature)`` restricted to the
  ``top_k`` most likely tokens and the smallest set whose probability reaches ``top_p``;
- ``repetition_penalty`` (``transformers`` semantics: logits of tokens already in the prompt or
  the continuation are divided by it when positive, multiplied when negative);
- ``frequency_penalty`` (OpenAI semantics: ``count_in_continuation * penalty`` is subtracted);
- stop tokens end a row inside the loop; stop strings cut the decoded text afterwards;
- ``no_repeat_ngram_size`` (``transformers`` semantics: an n-gram occurs once in the prompt and
  continuation together);
- ``num_beams > 1``: beam search as ``transformers`` does it (:mod:`beam_search`), its own loop.

Attention over the KV cache follows ``DecoderConfig.decode_attention``: with the ragged path
(the default wherever it applies; :mod:`polyglot_jax.models.decode_attention`) a step reads
each layer's cache only up to the longest running row, not all ``prompt + max_new_tokens``.

With a mesh, parameters keep their logical-axis shardings, prompts are split over ``batch``
(rows padded to a multiple of its shards) and the loop is jitted with those shardings.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from typing import Any

import gin
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from polyglot_jax.errors import ConfigError
from polyglot_jax.models import Decoder, init_cache
from polyglot_jax.models.decoder import constrain_cache
from polyglot_jax.runtime import beam_search, placement
from polyglot_jax.runtime.next_token import greedy_tokens, penalize, sample
from polyglot_jax.training import partitioning


@gin.configurable
@dataclasses.dataclass(frozen=True)
class Sampling:
    """Decoding settings (recorded next to every inference output).

    Attributes:
      temperature: 0 for greedy decoding.
      top_k: keep the k most likely tokens (0: all).
      top_p: keep the smallest set of tokens whose probability reaches p (1.0: all).
      repetition_penalty: > 1 discourages tokens of the prompt and continuation (1.0: off).
      frequency_penalty: subtracted per earlier occurrence in the continuation (0.0: off).
      stop_strings: the decoded text is cut before the first of these.
      num_samples: continuations per prompt, each with its own seed.
      num_beams: beam search with this many beams when > 1 (greedy: ``temperature == 0`` and
        no repetition or frequency penalty).
      no_repeat_ngram_size: no n-gram of this size occurs twice in a row's sequence (0: off).
      length_penalty: beam search ranks finished hypotheses by ``logprob / length ** it``.
    """

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    stop_strings: tuple[str, ...] = ()
    num_samples: int = 1
    num_beams: int = 1
    no_repeat_ngram_size: int = 0
    length_penalty: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.stop_strings, str) or not all(
            isinstance(s, str) and s for s in self.stop_strings
        ):
            raise ConfigError(
                f"STOP_STRINGS (Sampling.stop_strings) must be a list of non-empty strings, "
                f"got {self.stop_strings!r}"
            )
        checks = {  # field: (macro, allowed, what)
            "temperature": ("TEMPERATURE", lambda v: v >= 0, "a number >= 0"),
            "top_k": ("TOP_K", lambda v: v >= 0 and v == int(v), "an integer >= 0"),
            "top_p": ("TOP_P", lambda v: 0 < v <= 1, "a number in (0, 1]"),
            "repetition_penalty": ("REPETITION_PENALTY", lambda v: v > 0, "a number > 0"),
            "frequency_penalty": ("FREQUENCY_PENALTY", lambda v: True, "a number"),
            "num_samples": ("NUM_SAMPLES", lambda v: v >= 1 and v == int(v), "an integer >= 1"),
            "num_beams": ("NUM_BEAMS", lambda v: v >= 1 and v == int(v), "an integer >= 1"),
            "no_repeat_ngram_size": (
                "NO_REPEAT_NGRAM_SIZE",
                lambda v: v >= 0 and v == int(v),
                "an integer >= 0",
            ),
            "length_penalty": ("LENGTH_PENALTY", lambda v: True, "a number"),
        }
        for name, (macro, allowed, what) in checks.items():
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not allowed(value):
                raise ConfigError(f"{macro} (Sampling.{name}) must be {what}, got {value!r}")
        object.__setattr__(self, "stop_strings", tuple(self.stop_strings))
        if self.num_beams > 1 and (self.temperature or self.penalized):
            raise ConfigError(
                f"NUM_BEAMS (Sampling.num_beams) = {self.num_beams} is beam search: it needs "
                f"TEMPERATURE = 0 and no REPETITION_PENALTY or FREQUENCY_PENALTY"
            )

    @property
    def penalized(self) -> bool:
        """Whether the repetition or frequency penalty is on."""
        return self.repetition_penalty != 1.0 or self.frequency_penalty != 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "stop_strings": list(self.stop_strings)}


@dataclasses.dataclass(frozen=True)
class Generation:
    """Generated continuations of a batch of prompts.

    Attributes:
      tokens: per prompt, the new token ids without the stop token.
      finish_reasons: ``"eos"`` when the model emitted a stop token, ``"length"`` at
        ``max_new_tokens``.
    """

    tokens: list[list[int]]
    finish_reasons: list[str]


def bucket_length(length: int, multiple: int = 16) -> int:
    """``length`` rounded up to a multiple, so few prompt shapes need compiling."""
    return max(multiple, -(-length // multiple) * multiple)


def _generate(
    model: Decoder,
    params: Any,
    prompts: jax.Array,  # [batch, prompt_length] right-padded
    lengths: jax.Array,  # [batch]
    keys: jax.Array,  # [batch, 2] one PRNG key per row
    knobs: dict[str, jax.Array],  # Sampling's numeric fields as scalars
    stop_ids: jax.Array,  # [num_stop]
    *,
    max_new_tokens: int,
    greedy: bool,
    penalties: bool,
    ngram: int,
) -> jax.Array:
    batch, prompt_length = prompts.shape
    vocab = model.config.vocab_size
    cache = init_cache(model.config, batch, prompt_length + max_new_tokens)
    cache = constrain_cache(cache)
    positions = jnp.broadcast_to(jnp.arange(prompt_length), prompts.shape)
    logits, cache = model.apply(
        {"params": params}, prompts, positions, cache=cache, logits_at=lengths - 1
    )
    last = logits[:, 0]  # [batch, vocab] at each prompt's last token
    in_prompt = jnp.arange(prompt_length)[None, :] < lengths[:, None]  # [batch, prompt_length]
    seen = jnp.zeros((batch, vocab), bool).at[jnp.arange(batch)[:, None], prompts].max(in_prompt)
    counts = jnp.zeros((batch, vocab), jnp.float32)

    def choose(logits: jax.Array, carry: tuple) -> jax.Array:
        step, _, _, seen, counts, out, _ = carry
        if ngram:  # the sequence so far: the prompt, then ``out`` from each row's length on
            at = jnp.arange(prompt_length + max_new_tokens)[None, :] - lengths[:, None]
            generated = jnp.take_along_axis(out, jnp.clip(at, 0, max_new_tokens - 1), axis=1)
            padded = jnp.pad(prompts, ((0, 0), (0, max_new_tokens)))
            history = jnp.where(at >= 0, generated, padded)  # [batch, prompt + new]
            bans = beam_search.ngram_bans(history, lengths + step, ngram, vocab)
            logits = jnp.where(bans, -jnp.inf, logits)
        if penalties:
            logits = penalize(
                logits.astype(jnp.float32),
                seen,
                counts,
                knobs["repetition_penalty"],
                knobs["frequency_penalty"],
            )
        if greedy:
            return greedy_tokens(logits)
        steps = jnp.full((batch,), step, jnp.int32)
        return sample(logits, keys, steps, knobs["temperature"], knobs["top_k"], knobs["top_p"])

    def cond(carry: tuple) -> jax.Array:
        step, *_, done = carry
        return (step < max_new_tokens) & ~jnp.all(done)

    def body(carry: tuple) -> tuple:
        step, logits, cache, seen, counts, out, done = carry
        token = jnp.where(done, stop_ids[0], choose(logits, carry))  # [batch]
        out = out.at[:, step].set(token)
        if penalties:
            rows = jnp.arange(batch)
            seen = seen.at[rows, token].set(True)
            counts = counts.at[rows, token].add(1.0)
        done = done | jnp.isin(token, stop_ids)
        # Finished rows read at position 0 (their logits are never used again), so under the
        # ragged cache path a step costs as much as the longest running row.
        at = jnp.where(done, 0, lengths + step)  # [batch]
        logits, cache = model.apply({"params": params}, token[:, None], at[:, None], cache=cache)
        return step + 1, logits[:, 0], cache, seen, counts, out, done

    out = jnp.full((batch, max_new_tokens), stop_ids[0], jnp.int32)
    done = jnp.zeros((batch,), bool)
    carry = (jnp.int32(0), last, cache, seen, counts, out, done)
    return jax.lax.while_loop(cond, body, carry)[-2]


def _batch_shape(
    prompts: Sequence[Sequence[int]], mesh: Mesh | None, rules: partitioning.AxisRules | None
) -> tuple[int, int]:
    """``(rows, width)`` of this process's padded prompt array.

    On a mesh the rows are a multiple of this process's share of the batch shards, and every
    process of a multi-process mesh agrees on both (they run the loop together).
    """
    rows, width = len(prompts), max((len(p) for p in prompts), default=1)
    if mesh is not None and jax.process_count() > 1:
        both = multihost_utils.process_allgather(np.asarray([rows, width], np.int32))
        rows, width = (int(v) for v in np.max(both.reshape(-1, 2), axis=0))
    return placement.local_rows(rows, mesh, rules), bucket_length(width)


def generate(
    model: Decoder,
    params: Any,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    eos_id: int | Sequence[int],
    sampling: Sampling | None = None,
    seeds: Sequence[int] | None = None,
    pad_id: int = 0,
    mesh: Mesh | None = None,
    rules: partitioning.AxisRules | None = None,
) -> Generation:
    """Continues each prompt until a stop token or ``max_new_tokens`` new tokens.

    Args:
      model: the decoder module.
      params: its parameters (on ``mesh`` with their logical-axis shardings, if given).
      prompts: token ids per prompt (non-empty); on a multi-process mesh, this process's
        prompts (possibly none: every process takes part in each call).
      max_new_tokens: the most tokens generated per prompt.
      eos_id: the stop token, or several (the first one pads finished rows).
      sampling: decoding settings; greedy by default. ``num_samples`` and ``stop_strings`` are
        applied by callers (see :func:`~polyglot_jax.inference.infer.generate_records`), not
        here.
      seeds: one sampling seed per prompt (default: the row index).
      pad_id: id used to pad prompts to the bucket length.
      mesh: the device mesh the parameters are placed on (None: the default device).
      rules: logical axis rules of ``mesh`` (default: the standard rules).
    """
    sampling = sampling or Sampling()
    rules = rules or partitioning.standard_logical_axis_rules()
    if any(len(p) == 0 for p in prompts):
        raise ValueError("generate: every prompt needs at least one token")
    stop_ids = [eos_id] if isinstance(eos_id, int) else list(eos_id)
    seeds = list(range(len(prompts))) if seeds is None else list(seeds)
    if len(seeds) != len(prompts):
        raise ValueError(f"generate: {len(seeds)} seeds for {len(prompts)} prompts")
    if not prompts and (mesh is None or jax.process_count() == 1):
        return Generation(tokens=[], finish_reasons=[])
    rows, width = _batch_shape(prompts, mesh, rules)
    padded = np.full((rows, width), pad_id, np.int32)  # [rows, width]; extra rows: one token
    lengths = np.ones((rows,), np.int32)
    for row, prompt in enumerate(prompts):
        padded[row, : len(prompt)] = prompt
        lengths[row] = len(prompt)
    stops = np.asarray(stop_ids, np.int32)
    common = dict(max_new_tokens=max_new_tokens, ngram=sampling.no_repeat_ngram_size)
    if sampling.num_beams > 1:
        out = placement.run(
            beam_search.beam_search,
            model,
            params,
            [padded, lengths],
            [stops],
            mesh,
            rules,
            num_beams=sampling.num_beams,
            length_penalty=float(sampling.length_penalty),
            **common,
        )
    else:
        knobs = {
            "temperature": np.float32(max(sampling.temperature, 1e-6)),
            "top_k": np.int32(sampling.top_k),
            "top_p": np.float32(sampling.top_p),
            "repetition_penalty": np.float32(sampling.repetition_penalty),
            "frequency_penalty": np.float32(sampling.frequency_penalty),
        }
        all_seeds = np.zeros((rows,), np.uint32)
        all_seeds[: len(seeds)] = seeds
        keys = np.asarray(jax.vmap(jax.random.PRNGKey)(jnp.asarray(all_seeds)))  # [rows, 2]
        out = placement.run(
            _generate,
            model,
            params,
            [padded, lengths, keys],
            [knobs, stops],
            mesh,
            rules,
            greedy=sampling.temperature == 0,
            penalties=sampling.penalized,
            **common,
        )
    tokens, reasons = [], []
    for row in out[: len(prompts)].tolist():
        end = next((i for i, t in enumerate(row) if t in stop_ids), None)
        tokens.append(row if end is None else row[:end])
        reasons.append("length" if end is None else "eos")
    return Generation(tokens=tokens, finish_reasons=reasons)


def cut_at_stop_strings(text: str, stop_strings: Sequence[str]) -> tuple[str, bool]:
    """``text`` before the first stop string, and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stop_strings if s) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def sample_seed(seed: int, record_id: str, sample: int) -> int:
    """The sampling seed of one (prompt, sample): independent of batching and host count."""
    return zlib.crc32(f"{seed}:{record_id}:{sample}".encode()) & 0x7FFFFFFF
