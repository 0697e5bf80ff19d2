"""One model interface for every stage: loss, per-token scores and generation on a mesh.

:class:`LanguageModel` holds a decoder, its parameters and where they live: a ``(data, fsdp,
model)`` mesh and the logical axis rules that training uses, so a model that trains on a pod
answers there too. Every function is jitted with explicit shardings (:mod:`placement`), the
batch split over ``batch``'s mesh axes; without a mesh it runs on the default device. It works
on token ids; :class:`~polyglot_jax.runtime.chat_model.ChatModel` adds the vocabulary, chat
template and stop tokens, and is what every stage loads.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import flax.linen as nn
import gin
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from polyglot_jax.errors import ConfigError
from polyglot_jax.models import Decoder
from polyglot_jax.models.config import INFERENCE_DTYPES
from polyglot_jax.runtime import decoding, placement
from polyglot_jax.training import partitioning, runs, trainer

log = logging.getLogger(__name__)


_logged_dtypes: set[tuple[str, str]] = set()


def inference_dtype(name: str) -> str | None:
    """The dtype a loaded model stores its weights and computes in (None: the checkpoint's).

    ``auto`` is ``bfloat16`` on a GPU or TPU backend and the checkpoint's own dtype on CPU;
    ``checkpoint`` always keeps the checkpoint's. A cast is logged once per backend.

    Raises:
      ConfigError: an unknown name.
    """
    if name not in INFERENCE_DTYPES:
        raise ConfigError(f"inference dtype {name!r}: choose from {', '.join(INFERENCE_DTYPES)}")
    backend = jax.default_backend()
    chosen = name
    if name == "auto":
        chosen = "bfloat16" if backend in ("gpu", "tpu") else "checkpoint"
    if chosen != "checkpoint" and (name, backend) not in _logged_dtypes:  # a cast: said once
        _logged_dtypes.add((name, backend))
        log.info("inference dtype %s on %s: %s", name, backend, chosen)
    return None if chosen == "checkpoint" else chosen


@gin.configurable
def inference_mesh(shape: Sequence[int] = (1, -1, 1)) -> Mesh:
    """The ``(data, fsdp, model)`` mesh over every device; by default all of them on ``fsdp``.

    FSDP over all devices fits any model that training fits and splits the batch over every
    device too; ``(1, f, m)`` adds tensor parallelism over ``m`` devices.
    """
    return partitioning.create_mesh(*shape)


def token_scores(
    model: Decoder,
    params: Any,
    tokens: jax.Array,  # [batch, length] decoder inputs
    targets: jax.Array,  # [batch, length] next tokens
    weights: jax.Array,  # [batch, length] 1 where a target counts
) -> jax.Array:
    """``log p(targets[t] | tokens[:t + 1]) * weights``, [batch, length] float32."""
    logits, _ = model.apply({"params": params}, tokens)  # [batch, length, vocab]
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    return jnp.where(weights > 0, picked * weights, 0.0)


def top_token_scores(
    model: Decoder,
    params: Any,
    tokens: jax.Array,  # [batch, length] decoder inputs
    targets: jax.Array,  # [batch, length] next tokens
    *,
    k: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Each target's log-probability and the ``k`` most likely tokens at each position.

    Returns:
      ``log p(targets)`` [batch, length] float32, the top-k ids [batch, length, k] int32 and
      their log-probabilities [batch, length, k] float32, all from one log-softmax (so a
      target that is the argmax has exactly the top log-probability).
    """
    logits, _ = model.apply({"params": params}, tokens)  # [batch, length, vocab]
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    picked = jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
    top_logp, top_ids = jax.lax.top_k(logp, k)
    return picked, top_ids.astype(jnp.int32), top_logp


def _loss_sums(
    model: Decoder, params: Any, *columns: jax.Array, names: tuple[str, ...]
) -> dict[str, jax.Array]:
    return trainer.eval_step(params, dict(zip(names, columns, strict=True)), model=model)


class LanguageModel:
    """A decoder with its parameters, placed on a mesh by logical axis rules.

    Args:
      decoder: the Flax module.
      params: its parameters, placed on ``mesh`` with their logical-axis shardings (see
        :meth:`load` and :meth:`place`).
      mesh: the device mesh, or None for the default device.
      rules: logical axis rules (default: the standard rules, as in training).
    """

    def __init__(
        self,
        decoder: Decoder,
        params: Any,
        mesh: Mesh | None = None,
        rules: partitioning.AxisRules | None = None,
    ) -> None:
        self.decoder, self.params, self.mesh = decoder, params, mesh
        self.rules = rules or partitioning.standard_logical_axis_rules()

    @classmethod
    def place(
        cls,
        decoder: Decoder,
        params: Any,
        mesh: Mesh | None,
        rules: partitioning.AxisRules | None = None,
    ) -> LanguageModel:
        """``params`` (host or one-device arrays) moved onto ``mesh`` with their shardings."""
        model = cls(decoder, params, mesh, rules)
        if mesh is not None:
            abstract = runs.abstract_params(decoder, mesh, model.rules)
            model.params = jax.tree.map(
                lambda p, a: jax.device_put(p, a.sharding), params, abstract
            )
        return model

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """The mesh and axis rules in effect (nothing without a mesh)."""
        if self.mesh is None:
            yield
            return
        with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
            yield

    @property
    def batch_multiple(self) -> int:
        """Rows of a batch are padded to a multiple of this (the batch shards per process)."""
        return placement.local_rows(1, self.mesh, self.rules)

    def _padded(self, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
        rows = placement.local_rows(len(arrays[0]), self.mesh, self.rules)
        return [np.pad(a, [(0, rows - len(a))] + [(0, 0)] * (a.ndim - 1)) for a in arrays]

    def score(self, tokens: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Per-token log-likelihoods of ``targets`` after ``tokens``, [batch, length] float32.

        Args:
          tokens: [batch, length] int decoder inputs (this process's rows).
          targets: [batch, length] int, the token that follows each input.
          weights: [batch, length], 0 where a target is not scored (its score is 0).
        """
        arrays = [np.asarray(tokens, np.int32), np.asarray(targets, np.int32)]
        arrays = self._padded([*arrays, np.asarray(weights, np.float32)])
        out = placement.run(
            token_scores, self.decoder, self.params, arrays, [], self.mesh, self.rules
        )
        return out[: len(tokens)]

    def top_scores(
        self, tokens: np.ndarray, targets: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`top_token_scores` of this process's rows (see :meth:`score` for the inputs)."""
        arrays = self._padded([np.asarray(tokens, np.int32), np.asarray(targets, np.int32)])
        out = placement.run(
            top_token_scores, self.decoder, self.params, arrays, [], self.mesh, self.rules, k=k
        )
        return tuple(a[: len(tokens)] for a in out)

    def loss(self, batch: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Training's metrics (``loss``, ``accuracy``, ``num_tokens``, ...) on ``batch``.

        Args:
          batch: ``decoder_input_tokens``, ``decoder_target_tokens``, ``decoder_loss_weights``
            and optionally positions and segment ids, each [batch, length] (this process's
            rows; padding rows weigh 0).
        """
        names = tuple(sorted(batch))
        columns = self._padded([np.asarray(batch[k]) for k in names])  # padding rows weigh 0
        sums = placement.run(
            _loss_sums,
            self.decoder,
            self.params,
            columns,
            [],
            self.mesh,
            self.rules,
            out_rank=None,
            names=names,
        )
        metrics = trainer.mean_metrics(sums)
        return {k: float(v) for k, v in metrics.items()}

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int,
        eos_id: int | Sequence[int],
        sampling: decoding.Sampling | None = None,
        seeds: Sequence[int] | None = None,
        pad_id: int = 0,
    ) -> decoding.Generation:
        """Continuations of ``prompts`` (see :func:`decoding.generate`)."""
        return decoding.generate(
            self.decoder,
            self.params,
            prompts,
            max_new_tokens,
            eos_id,
            sampling,
            seeds,
            pad_id,
            mesh=self.mesh,
            rules=self.rules,
        )
