"""A training run's settings: :class:`TrainConfig` (the run) and :class:`DataConfig` (its data).

Both are frozen dataclasses that gin binds (``gin_configs/runs/finetune.gin``:
``TrainConfig.train_steps = %TRAIN_STEPS``, ``DataConfig.mixture_or_task_name =
%MIXTURE_OR_TASK_NAME``); :func:`from_gin` makes them from the parsed gin files and
:func:`polyglot_jax.training.loop.train` takes them as arguments.

Each checks its values when it is made: gin passes whatever a binding says (``BATCH_SIZE="8"``,
``TRAIN_STEPS=0``), and without a check a bad value ends deep inside the run as a
ZeroDivisionError or TypeError, or exits 0 having trained nothing. A bad value is a one-line
:class:`~polyglot_jax.errors.ConfigError` naming the macro a user would change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import gin
import optax

from polyglot_jax.errors import ConfigError
from polyglot_jax.models import DecoderConfig
from polyglot_jax.training import settings
from polyglot_jax.training.partitioning import AxisRules

BATCH_UNITS = ("rows", "examples")

OptimizerSpec = optax.GradientTransformation | Callable[..., optax.GradientTransformation] | None


def _optional_name(value: Any, name: str) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{name} must be None or a non-empty string, got {value!r}")


def _flag(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}")


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    return float(value)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What a run trains on.

    Attributes:
      mixture_or_task_name: registered SeqIO task or mixture (``MIXTURE_OR_TASK_NAME``).
      task_feature_lengths: ``{"targets": length}`` (``TASK_FEATURE_LENGTHS``).
      validation_mixture_or_task_name: mixture whose validation splits are scored
        (``VALIDATION_MIXTURE_OR_TASK_NAME``; None: the training mixture; the studies use every
        evaluation language).
      pack: pack examples into rows.
    """

    mixture_or_task_name: str
    task_feature_lengths: Mapping[str, int]
    validation_mixture_or_task_name: str | None = None
    pack: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.mixture_or_task_name, str):
            raise ConfigError(
                "MIXTURE_OR_TASK_NAME must be a task or mixture name, got "
                f"{self.mixture_or_task_name!r}"
            )
        lengths = self.task_feature_lengths
        if not isinstance(lengths, Mapping) or "targets" not in lengths:
            raise ConfigError(
                f'TASK_FEATURE_LENGTHS must be {{"targets": length}}, got {lengths!r}'
            )
        settings.integer(lengths["targets"], 'TASK_FEATURE_LENGTHS["targets"]')
        object.__setattr__(self, "task_feature_lengths", dict(lengths))  # the caller's may change
        _optional_name(
            self.validation_mixture_or_task_name,
            "VALIDATION_MIXTURE_OR_TASK_NAME (DataConfig.validation_mixture_or_task_name)",
        )
        _flag(self.pack, "DataConfig.pack")

    @property
    def length(self) -> int:
        """Tokens of a row (``TASK_FEATURE_LENGTHS["targets"]``)."""
        return self.task_feature_lengths["targets"]

    @property
    def validation_mixture(self) -> str:
        """The mixture whose validation splits are scored."""
        return self.validation_mixture_or_task_name or self.mixture_or_task_name

    def check_model(self, model_config: DecoderConfig) -> None:
        """Refuses rows longer than the model's ``max_length``.

        Raises:
          ConfigError: naming both lengths.
        """
        if self.length > model_config.max_length:
            raise ConfigError(
                f'TASK_FEATURE_LENGTHS["targets"] = {self.length} is longer than the model\'s '
                f"max_length {model_config.max_length}"
            )


@gin.configurable
@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How a run trains: where it writes, the model, its length, batch and bookkeeping.

    Attributes:
      model_dir: run directory (``MODEL_DIR``); an existing run there is resumed.
      model_config: the decoder (``MODEL_CONFIG``, from a ``models/*.gin`` file).
      batch_size: global batch size (``BATCH_SIZE``) in ``batch_unit``.
      train_steps: total optimizer steps (``TRAIN_STEPS``), counting resumed ones; None to
        count them from ``num_epochs``.
      num_epochs: passes over the mixture (``NUM_EPOCHS``) instead of ``train_steps``.
      batch_unit: ``"rows"`` (packed rows, T5X's unit) or ``"examples"`` per optimizer update
        (the papers' unit, ``BATCH_UNIT``); see :mod:`polyglot_jax.training.budget`.
      optimizer: optax transformation, or a factory taking ``decay_steps`` (``@make_optimizer``);
        None: :func:`~polyglot_jax.training.optimizers.make_optimizer` as gin configures it.
      z_loss: coefficient of the auxiliary z-loss (``Z_LOSS``; PaLM used 1e-4).
      seed: parameter init and data order seed (``SEED``).
      checkpoint_every: steps between checkpoints (the last step is always saved).
      keep_checkpoints: newest checkpoints kept.
      log_every: steps between progress lines and TensorBoard points.
      microbatches: gradient accumulation: each batch is split into this many microbatches
        (``MICROBATCHES``).
      eval_every: steps between per-language validation losses (``EVAL_EVERY``; None: at every
        checkpoint; 0: never). Each language of the validation mixture that has a
        ``validation`` split gets one token-weighted loss, logged and written to TensorBoard as
        ``validation/<lang>/loss``.
      mesh_shape: ``(data, fsdp, model)`` sizes, -1 fills.
      axis_rules: logical axis rules; None: the standard rules.
      initial_checkpoint_path: weights to start from when ``model_dir`` has no checkpoint yet
        (``INITIAL_CHECKPOINT_PATH``): a Hugging Face model directory or one of our runs.
      describe_data: count examples, tokens and over-long examples per language before the
        first step (one pass over the mixture), log them and write ``data_summary.json``.
      tensorboard_dir: where TensorBoard event files go (None: ``<model_dir>/train``).
    """

    model_dir: str
    model_config: DecoderConfig
    batch_size: int
    train_steps: int | None = None
    num_epochs: float | None = None
    batch_unit: str = "rows"
    optimizer: OptimizerSpec = None
    z_loss: float = 0.0
    seed: int = 0
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 25
    microbatches: int = 1
    eval_every: int | None = None
    mesh_shape: tuple[int, int, int] = (-1, 1, 1)
    axis_rules: AxisRules | None = None
    initial_checkpoint_path: str | None = None
    describe_data: bool = True
    tensorboard_dir: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model_dir, str) or not self.model_dir.strip():
            raise ConfigError(
                "MODEL_DIR (TrainConfig.model_dir) must be a non-empty path, got "
                f"{self.model_dir!r}"
            )
        self._check_length()
        settings.integer(self.checkpoint_every, "TrainConfig.checkpoint_every")
        settings.integer(self.keep_checkpoints, "TrainConfig.keep_checkpoints")
        settings.integer(self.log_every, "TrainConfig.log_every")
        settings.integer(self.microbatches, "MICROBATCHES (TrainConfig.microbatches)")
        if self.eval_every is not None:
            settings.integer(self.eval_every, "EVAL_EVERY (TrainConfig.eval_every)", minimum=0)
        settings.integer(self.seed, "SEED (TrainConfig.seed)", minimum=0)
        if _number(self.z_loss, "Z_LOSS (TrainConfig.z_loss)") < 0:
            raise ConfigError(f"Z_LOSS (TrainConfig.z_loss) must be >= 0, got {self.z_loss!r}")
        if not isinstance(self.model_config, DecoderConfig):
            raise ConfigError(
                "MODEL_CONFIG must be a DecoderConfig (pass a models/*.gin file), got "
                f"{self.model_config!r}"
            )
        self._check_mesh()
        optimizer = self.optimizer
        if not (
            optimizer is None
            or isinstance(optimizer, optax.GradientTransformation)
            or callable(optimizer)
        ):
            raise ConfigError(
                "TrainConfig.optimizer must be an optax transformation or a factory taking "
                f"decay_steps (@make_optimizer), got {optimizer!r}"
            )
        _optional_name(
            self.initial_checkpoint_path,
            "INITIAL_CHECKPOINT_PATH (TrainConfig.initial_checkpoint_path)",
        )
        _optional_name(self.tensorboard_dir, "TrainConfig.tensorboard_dir")
        _flag(self.describe_data, "TrainConfig.describe_data")

    def _check_length(self) -> None:
        """One of ``TRAIN_STEPS`` and ``NUM_EPOCHS``, in range, and a known ``BATCH_UNIT``."""
        steps, epochs = self.train_steps, self.num_epochs
        if (steps is None) == (epochs is None):
            raise ConfigError(
                f"set one of TRAIN_STEPS ({steps!r}) and NUM_EPOCHS ({epochs!r}), e.g. "
                "--gin.TRAIN_STEPS=None --gin.NUM_EPOCHS=3"
            )
        if self.batch_unit not in BATCH_UNITS:
            raise ConfigError(f"BATCH_UNIT must be one of {BATCH_UNITS}, got {self.batch_unit!r}")
        settings.integer(self.batch_size, "BATCH_SIZE (TrainConfig.batch_size)")
        if epochs is None:
            settings.integer(steps, "TRAIN_STEPS (TrainConfig.train_steps)")
        elif isinstance(epochs, bool) or not isinstance(epochs, int | float) or epochs <= 0:
            raise ConfigError(f"NUM_EPOCHS must be a positive number, got {epochs!r}")

    def _check_mesh(self) -> None:
        shape = self.mesh_shape
        if (
            not isinstance(shape, tuple | list)
            or len(shape) != 3
            or not all(
                isinstance(n, int) and not isinstance(n, bool) and (n > 0 or n == -1) for n in shape
            )
        ):
            raise ConfigError(
                "TrainConfig.mesh_shape must be three sizes (data, fsdp, model), each positive "
                f"or -1, got {shape!r}"
            )
        object.__setattr__(self, "mesh_shape", tuple(shape))

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


Config = TypeVar("Config", TrainConfig, DataConfig)


def configured(cls: type[Config]) -> Config:
    """``cls`` with the fields the parsed gin config binds.

    Raises:
      ConfigError: gin binds none of a required field (no run file such as
        ``runs/finetune.gin`` was given), or a bound value is refused.
    """
    required = {
        f.name: gin.REQUIRED
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    try:
        return cls(**required)
    except ConfigError as e:  # without gin's "In call to configurable" line
        raise ConfigError(str(e).splitlines()[0]) from None
    except RuntimeError as e:  # gin: "Required bindings for `X` not provided in config: [...]"
        if not str(e).startswith("Required bindings"):
            raise
        message = str(e).splitlines()[0]
        raise ConfigError(f"{message}: pass a run file such as runs/finetune.gin") from None


def from_gin() -> tuple[TrainConfig, DataConfig]:
    """The run's :class:`TrainConfig` and :class:`DataConfig` as the parsed gin files bind them.

    Raises:
      ConfigError: a required binding is missing or a value is refused (naming its macro).
    """
    return configured(TrainConfig), configured(DataConfig)
