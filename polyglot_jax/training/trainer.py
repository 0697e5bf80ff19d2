"""Train state, optimizer, and the pure train/eval steps; :class:`ShardedSteps` jits them on a mesh.

``train_step(state, batch) -> (state, metrics)`` is a plain function of arrays. Sharding lives in
one place: the state's shardings come from the parameters' logical axes, the batch is split over
``batch`` → ``(data, fsdp)``, and both steps are jitted with those shardings and donation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from polyglot_jax.errors import ConfigError
from polyglot_jax.models import lora
from polyglot_jax.training import losses, partitioning

Batch = Mapping[str, jax.Array]  # each [batch, length]
Metrics = dict[str, jax.Array]

log = logging.getLogger(__name__)


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue: step, parameters, optimizer state and RNG key."""

    step: jax.Array  # int32 scalar
    params: Any
    opt_state: Any
    rng: jax.Array  # uint32[2]


def loss_sums(
    params: Any,
    batch: Batch,
    model: nn.Module,
    dropout_rng: jax.Array | None = None,
    z_loss: float = 0.0,
) -> tuple[jax.Array, Metrics]:
    """Summed token-weighted cross entropy (plus z-loss) over ``decoder_loss_weights``.

    Returns ``(objective, {"loss_sum", "z_loss_sum", "correct", "num_tokens"})``; sums (not
    means) add up exactly over microbatches. The objective is ``loss_sum + z_loss_sum``, where
    ``z_loss_sum = z_loss * sum(weights * logsumexp(logits)^2)`` (PaLM's auxiliary loss, which
    keeps the softmax normaliser near 1). Dropout (LoRA adapters) is active when
    ``dropout_rng`` is given. With ``DecoderConfig.loss_chunk > 0`` the logits are made a chunk
    of the sequence at a time and never held whole (:mod:`~polyglot_jax.training.losses`).
    """
    sums = losses.decoder_sums(params, batch, model, dropout_rng, z_loss)
    return sums["loss_sum"] + sums["z_loss_sum"], sums


def mean_metrics(sums: Metrics) -> Metrics:
    """``loss`` (cross entropy), ``z_loss`` and ``accuracy`` per trained token from the sums."""
    n = jnp.maximum(sums["num_tokens"], 1.0)
    return {
        "loss": sums["loss_sum"] / n,
        "z_loss": sums["z_loss_sum"] / n,
        "accuracy": sums["correct"] / n,
        "num_tokens": sums["num_tokens"],
    }


def split_microbatches(batch: Batch, microbatches: int) -> Batch:
    """``[batch, ...]`` → ``[microbatches, batch / microbatches, ...]``.

    Microbatch ``i`` takes rows ``i, i + microbatches, ...``, so each stays spread evenly over
    the devices that hold the batch.
    """

    def split(x: jax.Array) -> jax.Array:
        if x.shape[0] % microbatches:
            raise ValueError(f"batch of {x.shape[0]} rows is not divisible by {microbatches}")
        return x.reshape(x.shape[0] // microbatches, microbatches, *x.shape[1:]).swapaxes(0, 1)

    return jax.tree.map(split, batch)


def train_step(
    state: TrainState,
    batch: Batch,
    *,
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    microbatches: int = 1,
    z_loss: float = 0.0,
) -> tuple[TrainState, Metrics]:
    """One optimizer step on ``batch``; only the trainable part (LoRA adapters) is updated.

    With ``microbatches > 1`` the gradient of the token-weighted loss is accumulated over a
    ``lax.scan`` of microbatches (same result as one pass, a fraction of the activation memory).
    ``z_loss`` adds :func:`loss_sums`' auxiliary term to the objective.
    """
    dropout_rng = jax.random.fold_in(state.rng, state.step)
    trainable, frozen = lora.split(state.params, model.config)

    def summed(trainable: Any, batch: Batch, rng: jax.Array) -> tuple[jax.Array, Metrics]:
        return loss_sums(lora.combine(trainable, frozen), batch, model, rng, z_loss)

    grad_fn = jax.grad(summed, has_aux=True)
    if microbatches == 1:
        grads, sums = grad_fn(trainable, batch, dropout_rng)
    else:

        def accumulate(carry: tuple, xs: tuple) -> tuple[tuple, None]:
            micro, index = xs
            grads, sums = grad_fn(trainable, micro, jax.random.fold_in(dropout_rng, index))
            return jax.tree.map(jnp.add, carry, (grads, sums)), None

        zeros = (
            jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), trainable),
            dict.fromkeys(("loss_sum", "z_loss_sum", "correct", "num_tokens"), jnp.float32(0)),
        )
        xs = (split_microbatches(batch, microbatches), jnp.arange(microbatches))
        (grads, sums), _ = jax.lax.scan(accumulate, zeros, xs)
    scale = 1.0 / jnp.maximum(sums["num_tokens"], 1.0)
    grads = jax.tree.map(lambda g, p: (g * scale).astype(p.dtype), grads, trainable)
    updates, opt_state = optimizer.update(grads, state.opt_state, trainable)
    params = lora.combine(optax.apply_updates(trainable, updates), frozen)
    metrics = {**mean_metrics(sums), "grad_norm": optax.tree.norm(grads)}
    finite = [jnp.isfinite(metrics["loss"]), jnp.isfinite(metrics["grad_norm"])]
    finite += [jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)]
    metrics["finite"] = jnp.all(jnp.stack(finite)).astype(jnp.float32)  # 1.0: a usable state
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    return new_state, metrics


def eval_step(params: Any, batch: Batch, *, model: nn.Module) -> Metrics:
    """:func:`loss_sums`' counts on ``batch`` (sum them over batches, then :func:`mean_metrics`)."""
    return loss_sums(params, batch, model)[1]


@dataclasses.dataclass
class ShardedSteps:
    """Init, train and eval steps jitted for a mesh with logical-axis shardings.

    Attributes:
      model: the Flax module.
      optimizer: the optax transformation.
      mesh: the device mesh.
      rules: logical axis rules.
      seq_length: sequence length used to trace parameter shapes.
      microbatches: gradient accumulation steps per optimizer step.
      z_loss: coefficient of the auxiliary z-loss in the training objective.
    """

    model: nn.Module
    optimizer: optax.GradientTransformation
    mesh: Mesh
    rules: partitioning.AxisRules
    seq_length: int
    microbatches: int = 1
    z_loss: float = 0.0

    def __post_init__(self) -> None:
        rng = jax.random.PRNGKey(0)
        with self.context():
            boxed = jax.eval_shape(self._init_boxed, rng)
        self.state_sharding = partitioning.logical_to_sharding(boxed, self.mesh, self.rules)
        self.abstract_state = jax.tree.map(
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
            nn.unbox(boxed),
            self.state_sharding,
        )
        config = self.model.config
        if config.lora is not None and not lora.adapters_only(self.abstract_state.params):
            raise ConfigError(
                f"LoRA targets {list(config.lora.targets)} select no projection of this model: "
                "training would update nothing"
            )
        self.batch_sharding = partitioning.batch_sharding(self.mesh, self.rules)
        replicated = partitioning.replicated(self.mesh)
        self._init = jax.jit(
            lambda rng: nn.unbox(self._init_boxed(rng)), out_shardings=self.state_sharding
        )
        self._train = jax.jit(
            functools.partial(
                train_step,
                model=self.model,
                optimizer=self.optimizer,
                microbatches=self.microbatches,
                z_loss=self.z_loss,
            ),
            in_shardings=(self.state_sharding, self.batch_sharding),
            out_shardings=(self.state_sharding, replicated),
            donate_argnums=(0,),
        )
        self._eval = jax.jit(
            functools.partial(eval_step, model=self.model),
            in_shardings=(self.state_sharding.params, self.batch_sharding),
            out_shardings=replicated,
        )

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """Mesh and axis-rule context for tracing and running the steps."""
        with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
            yield

    def _init_boxed(self, rng: jax.Array) -> TrainState:
        tokens = jnp.ones((1, self.seq_length), jnp.int32)
        params = self.model.init(rng, tokens)["params"]
        opt_state = self.optimizer.init(lora.split(params, self.model.config)[0])
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=_fit_axes(opt_state),
            rng=rng,
        )

    def init(self, seed: int) -> TrainState:
        """A fresh state, created directly with its sharding."""
        with self.context():
            return self._init(jax.random.PRNGKey(seed))

    def base_sharding(self) -> Any:
        """Shardings of the parameters without LoRA adapters (what a checkpoint import fills)."""
        return lora.without_adapters(self.state_sharding.params)

    def init_from(self, seed: int, base_params: Any) -> TrainState:
        """A fresh state whose base weights come from ``base_params`` (adapters stay fresh)."""

        def fn(rng: jax.Array, base: Any) -> TrainState:
            params = lora.with_base(nn.unbox(self._init_boxed(rng).params), base)
            opt_state = self.optimizer.init(lora.split(params, self.model.config)[0])
            return TrainState(jnp.zeros((), jnp.int32), params, opt_state, rng)

        with self.context():
            init = jax.jit(fn, out_shardings=self.state_sharding)
            return init(jax.random.PRNGKey(seed), base_params)

    def train(self, state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        with self.context():
            return self._train(state, batch)

    def evaluate(self, params: Any, batch: Batch) -> Metrics:
        with self.context():
            return self._eval(params, batch)

    def place_batch(self, batch: Mapping[str, Any]) -> Batch:
        return partitioning.shard_batch(dict(batch), self.batch_sharding)


def _fit_axes(opt_state: Any) -> Any:
    """Optimizer state whose logical axes fit its shapes.

    Optimizers map over the (boxed) parameters, so every state leaf inherits its parameter's
    axis names, also when its shape differs: Adafactor's factored row/column vectors drop a
    dimension, and its placeholders are ``[1]``. Such leaves are small and stay replicated;
    a named dimension of size 1 is left unsharded.
    """

    def fit(leaf: Any) -> Any:
        if not isinstance(leaf, nn.LogicallyPartitioned):
            return leaf
        shape = leaf.value.shape
        if len(shape) != len(leaf.names):
            return leaf.replace(names=(None,) * len(shape))
        return leaf.replace(
            names=tuple(n if d > 1 else None for n, d in zip(leaf.names, shape, strict=True))
        )

    return jax.tree.map(fit, opt_state, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
