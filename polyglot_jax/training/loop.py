"""The training loop: ``train(TrainConfig, DataConfig)`` over a SeqIO mixture on a device mesh.

A run writes ``MODEL_DIR/config.gin``, ``MODEL_DIR/model_config.json``, orbax checkpoints
``MODEL_DIR/checkpoint_<step>`` and TensorBoard scalars in ``MODEL_DIR/train``; started again
with the same ``MODEL_DIR`` it resumes from the latest checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from clu import metric_writers

from polyglot_jax import gin_utils, storage
from polyglot_jax.data import describe, pipeline, preprocessors, templates
from polyglot_jax.errors import ConfigError, RunDirError
from polyglot_jax.models import Decoder, DecoderConfig, hf, lora
from polyglot_jax.models.decoder import stack_layers, unstack_layers
from polyglot_jax.training import (
    budget,
    checkpoints,
    optimizers,
    partitioning,
    provenance,
    runs,
    trainer,
)
from polyglot_jax.training.config import DataConfig, TrainConfig

log = logging.getLogger(__name__)
# DecoderConfig fields that change how a run computes or stores its layers, not the weights.
LAYOUT_ONLY_FIELDS = ("scan_layers", "remat")
TRAIN_PLAN = "train_plan.json"  # the run's steps, rows and examples per step


@dataclasses.dataclass
class TrainResult:
    """What a finished run reports: its final step, last metrics and where it wrote."""

    step: int
    metrics: dict[str, float]
    model_dir: pathlib.Path
    state: trainer.TrainState
    validation: dict[str, float] = dataclasses.field(default_factory=dict)


def train(config: TrainConfig, data: DataConfig, *, progress: bool = True) -> TrainResult:
    """Trains ``config.model_config`` on ``data`` and checkpoints to ``config.model_dir``.

    ``python -m polyglot_jax.train`` makes both from the gin files
    (:func:`polyglot_jax.training.config.from_gin`).

    Args:
      config: the run: its directory, model, length, batch, optimizer and bookkeeping.
      data: the training mixture, its lengths and the validation mixture.
      progress: log a progress line every ``config.log_every`` steps.

    Raises:
      ConfigError: a setting that does not fit the mixture or the model (rows longer than the
        model's ``max_length``, a vocabulary larger than its embedding, a batch that the
        microbatches and processes do not divide).
      RunDirError: ``config.model_dir`` holds a run of another model or data order.
      FloatingPointError: the loss or a parameter stopped being finite.
    """
    model_config, model_dir = config.model_config, config.model_dir
    name, length = data.mixture_or_task_name, data.length
    data.check_model(model_config)  # before plan_steps, which may read the whole mixture
    microbatches = config.microbatches
    plan = budget.plan_steps(config, data, multiple_of=microbatches * jax.process_count())
    train_steps, rows_per_step = plan.steps, plan.rows_per_step
    optimizer = optimizers.build_optimizer(config.optimizer, train_steps)
    model_dir_path = storage.as_path(model_dir)
    vocabulary = pipeline.vocabulary_of(name)
    if vocabulary.vocab_size > model_config.vocab_size:
        raise ConfigError(
            f"{name}: vocabulary has {vocabulary.vocab_size} ids but "
            f"DecoderConfig.vocab_size is {model_config.vocab_size}"
        )
    template, loss_on = templates.chat_format()
    chat_format = {"template": template, "loss_on": loss_on, "mixture_or_task_name": name}
    resuming = runs.prepare(model_dir_path, model_config, chat_format)
    runs.record_tokenizer(model_dir_path, vocabulary)
    if jax.process_index() == 0:
        provenance.record(model_dir_path, name)  # data files, pins, package versions
    if config.describe_data and jax.process_index() == 0:
        summarize_data(model_dir_path, name, length)
    steps = trainer.ShardedSteps(
        Decoder(model_config),
        optimizer,
        partitioning.create_mesh(*config.mesh_shape),
        config.axis_rules or partitioning.standard_logical_axis_rules(),
        length,
        microbatches,
        config.z_loss,
    )
    if rows_per_step % (microbatches * jax.process_count()):
        raise ConfigError(
            f"batch size {rows_per_step} is not divisible by microbatches ({microbatches}) "
            f"x processes ({jax.process_count()})"
        )
    checkpoint_every, log_every, seed = config.checkpoint_every, config.log_every, config.seed
    eval_every = checkpoint_every if config.eval_every is None else config.eval_every
    validation = (
        pipeline.validation_batches(
            data.validation_mixture, data.task_feature_lengths, rows_per_step
        )
        if eval_every
        else {}
    )
    batches = pipeline.train_batches(
        name, data.task_feature_lengths, rows_per_step, seed, pack=data.pack
    )
    ckpt = checkpoints.Checkpointer(model_dir_path, max_to_keep=config.keep_checkpoints)
    restored = ckpt.restore_latest(steps.abstract_state, batches) if resuming else None
    initial = config.initial_checkpoint_path
    if restored is None and initial:
        base = load_base_params(initial, model_config, steps)
        state, start = steps.init_from(seed, base), 0
        log.info("initialised %s from %s", model_dir, initial)
    elif restored is None:
        state, start = steps.init(seed), 0
    else:
        start, state, saved = restored
        log.info("resuming %s from step %d", model_dir, start)
    data_position = {
        "mixture_or_task_name": name,
        "task_feature_lengths": dict(data.task_feature_lengths),
        "seed": seed,
        "batch_size": rows_per_step,
        "pack": data.pack,
    }
    if restored is not None:
        changed = [k for k, v in data_position.items() if saved.get(k, v) != v]
        if changed:
            raise RunDirError(
                f"{model_dir}: checkpoint_{start} was written with a different "
                + ", ".join(
                    f"{k} ({saved[k]!r}, this run has {data_position[k]!r})" for k in changed
                )
            )
    if jax.process_index() == 0:
        gin_utils.write_config(model_dir_path)
        storage.write_json(model_dir_path / TRAIN_PLAN, dataclasses.asdict(plan))
    log_plan(model_dir_path, model_config, name, steps, (start, train_steps))
    writer = metric_writers.create_default_writer(
        config.tensorboard_dir or str(model_dir_path / "train"),
        just_logging=jax.process_index() > 0,
    )
    metrics: dict[str, float] = {}
    losses: dict[str, float] = {}
    tokens, tick = 0.0, time.perf_counter()
    step, unchecked = start, None  # (step, metrics) checked one step late: no stall

    def check_finite(step: int, step_metrics: trainer.Metrics) -> None:
        if float(step_metrics["finite"]):
            return
        loss, grad_norm = float(step_metrics["loss"]), float(step_metrics["grad_norm"])
        kept = ckpt.latest_step()
        raise FloatingPointError(
            f"{model_dir}: training diverged at step {step} (loss {loss}, gradient norm "
            f"{grad_norm}, or a parameter is not finite); stopped, the last good checkpoint is "
            f"{'none' if kept is None else f'checkpoint_{kept}'}"
        )

    try:
        for step in range(start + 1, train_steps + 1):
            state, step_metrics = steps.train(state, steps.place_batch(next(batches)))
            if unchecked is not None:
                check_finite(*unchecked)
            unchecked = (step, step_metrics)
            if step % log_every == 0 or step == train_steps:
                metrics = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
                tokens += metrics["num_tokens"] * log_every
                elapsed = time.perf_counter() - tick
                metrics["target_tokens_per_second"] = tokens / max(elapsed, 1e-9)
                tokens, tick = 0.0, time.perf_counter()
                writer.write_scalars(step, metrics)
                if progress:
                    log.info(
                        "%s step %d/%d loss %.4f accuracy %.3f target tokens/s %.0f",
                        model_dir_path.name,
                        step,
                        train_steps,
                        metrics["loss"],
                        metrics["accuracy"],
                        metrics["target_tokens_per_second"],
                    )
            if validation and (step % eval_every == 0 or step == train_steps):
                losses = validation_losses(steps, state.params, validation)
                writer.write_scalars(step, per_language_scalars(losses))
                if progress:
                    shown = " ".join(f"{lang} {v:.3f}" for lang, v in losses.items())
                    log.info("%s step %d validation loss: %s", model_dir_path.name, step, shown)
            if step % checkpoint_every == 0 or step == train_steps:
                check_finite(*unchecked)
                ckpt.save(step, state, data_position, batches, force=step == train_steps)
    finally:
        ckpt.close()
        writer.flush()
    if jax.process_index() == 0:
        gin_utils.write_config(model_dir_path)
    return TrainResult(step, metrics, model_dir_path, state, losses)


def log_plan(
    model_dir: Any,
    model_config: DecoderConfig,
    mixture_or_task_name: str,
    steps: trainer.ShardedSteps,
    step_range: tuple[int, int],
) -> None:
    """One log line of what this run trains: model, size, data, steps and mesh."""
    start, train_steps = step_range
    params = sum(x.size for x in jax.tree.leaves(steps.abstract_state.params))
    cfg = model_config
    adapters = f", LoRA rank {cfg.lora.rank} on {'/'.join(cfg.lora.targets)}" if cfg.lora else ""
    log.info(
        "%s: training %s %d layers x %d (%s parameters%s) on %s, steps %d to %d, mesh %s",
        model_dir,
        cfg.family,
        cfg.num_layers,
        cfg.embed_dim,
        f"{params / 1e6:.1f}M",
        adapters,
        mixture_or_task_name,
        start + 1,
        train_steps,
        dict(steps.mesh.shape),
    )
    if start >= train_steps:
        log.info("%s is already at step %d of %d: nothing to train", model_dir, start, train_steps)


def validation_losses(
    steps: trainer.ShardedSteps, params: Any, batches: Mapping[str, list[dict[str, np.ndarray]]]
) -> dict[str, float]:
    """Token-weighted loss per language over all of its validation batches."""
    out = {}
    for lang, lang_batches in batches.items():
        sums = None
        for batch in lang_batches:
            step_sums = steps.evaluate(params, steps.place_batch(batch))
            sums = step_sums if sums is None else jax.tree.map(jnp.add, sums, step_sums)
        out[lang] = float(trainer.mean_metrics(sums)["loss"])
    return out


def per_language_scalars(losses: Mapping[str, float]) -> dict[str, float]:
    """TensorBoard names: ``validation/<lang>/loss`` and their mean ``validation/mean_loss``."""
    scalars = {f"validation/{lang}/loss": v for lang, v in losses.items()}
    scalars["validation/mean_loss"] = float(np.mean(list(losses.values())))
    return scalars


def summarize_data(model_dir: Any, mixture_or_task_name: str, length: int) -> dict:
    """Writes (once per run) and logs per-language counts, naming over-long examples."""
    path = model_dir / "data_summary.json"
    if path.exists():
        return json.loads(path.read_text())
    table = describe.describe(mixture_or_task_name, length=length)
    overlong = preprocessors.ChatFeatureConverter().overlong
    summary = {"length": length, "overlong": overlong, "languages": table}
    storage.write_json(path, summary)
    log.info("%s per language:\n%s", mixture_or_task_name, describe.format_table(table))
    for lang, row in table.items():
        if row["over_length"]:
            log.warning(
                "%s: %d of %d %s examples are longer than %d tokens and will be %s",
                mixture_or_task_name,
                row["over_length"],
                row["examples"],
                lang,
                length,
                "truncated" if overlong == "truncate" else "dropped",
            )
    return summary


def load_base_params(path: str, model_config: DecoderConfig, steps: trainer.ShardedSteps) -> Any:
    """Base weights from a Hugging Face directory or a run, placed with the run's sharding.

    Raises:
      ConfigError: the checkpoint's architecture differs from ``model_config`` (names the fields).
    """
    source = runs.resolve(path)
    differ = runs.config_differences(
        source.model_config(), model_config, ignore=(*runs.RUN_ONLY_FIELDS, *LAYOUT_ONLY_FIELDS)
    )
    if differ:
        raise ConfigError(
            f"{path}: checkpoint architecture differs from the run's model config in "
            f"{'; '.join(differ)}"
        )
    abstract = lora.without_adapters(steps.abstract_state.params)
    scan = model_config.scan_layers
    if source.hf_dir is not None:
        params_cfg = source.model_config().replace(
            param_dtype=model_config.param_dtype, scan_layers=scan
        )
        return hf.load_hf_params(source.hf_dir, params_cfg, steps.base_sharding())
    if source.model_config().scan_layers == scan:
        return runs.load_params(source, Decoder(model_config.replace(lora=None)), abstract)
    # A run saved in the other layer layout: read it as saved, then restack on the host.
    other = model_config.replace(lora=None, scan_layers=not scan)
    params = runs.load_params(source, Decoder(other))
    params = stack_layers(params, model_config.num_layers) if scan else unstack_layers(params)
    return jax.device_put(params, steps.base_sharding())
