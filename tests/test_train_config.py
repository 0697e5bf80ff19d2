"""TrainConfig and DataConfig: checked when made, frozen, made by gin, read by the study plan."""

import dataclasses

import gin
import pytest

from polyglot_jax import gin_utils
from polyglot_jax.errors import ConfigError
from polyglot_jax.models import DecoderConfig
from polyglot_jax.studies import catalog, grid
from polyglot_jax.studies.plan import Options, Planner, write_state
from polyglot_jax.training.config import DataConfig, TrainConfig, from_gin

MODEL = DecoderConfig(max_length=64)
TRAIN = {"model_dir": "/tmp/run", "model_config": MODEL, "batch_size": 4, "train_steps": 10}
DATA = {"mixture_or_task_name": "demo_pinch", "task_feature_lengths": {"targets": 32}}


def one_line(error: pytest.ExceptionInfo) -> str:
    """The message, one line (gin adds a line naming the configurable, shown after it)."""
    message, *rest = str(error.value).splitlines()
    assert all(line.startswith("  In call to configurable") for line in rest), rest
    return message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_dir": ""}, "MODEL_DIR (TrainConfig.model_dir) must be a non-empty path, got ''"),
        ({"model_dir": 3}, "MODEL_DIR (TrainConfig.model_dir) must be a non-empty path, got 3"),
        ({"batch_size": 0}, "BATCH_SIZE (TrainConfig.batch_size) must be a positive integer"),
        ({"batch_size": "8"}, "BATCH_SIZE (TrainConfig.batch_size) must be a positive integer"),
        ({"train_steps": 0}, "TRAIN_STEPS (TrainConfig.train_steps) must be a positive integer"),
        ({"train_steps": True}, "TRAIN_STEPS (TrainConfig.train_steps) must be a positive"),
        ({"num_epochs": 3}, "set one of TRAIN_STEPS (10) and NUM_EPOCHS (3)"),
        ({"train_steps": None}, "set one of TRAIN_STEPS (None) and NUM_EPOCHS (None)"),
        ({"train_steps": None, "num_epochs": -1}, "NUM_EPOCHS must be a positive number, got -1"),
        ({"batch_unit": "tokens"}, "BATCH_UNIT must be one of ('rows', 'examples'), got 'tokens'"),
        ({"checkpoint_every": 0}, "TrainConfig.checkpoint_every must be a positive integer"),
        ({"keep_checkpoints": 0}, "TrainConfig.keep_checkpoints must be a positive integer"),
        ({"log_every": 2.0}, "TrainConfig.log_every must be a positive integer, got 2.0"),
        ({"microbatches": -1}, "MICROBATCHES (TrainConfig.microbatches) must be a positive"),
        ({"eval_every": -2}, "EVAL_EVERY (TrainConfig.eval_every) must be an integer >= 0"),
        ({"seed": -1}, "SEED (TrainConfig.seed) must be an integer >= 0, got -1"),
        ({"z_loss": "big"}, "Z_LOSS (TrainConfig.z_loss) must be a number, got 'big'"),
        ({"z_loss": -1e-4}, "Z_LOSS (TrainConfig.z_loss) must be >= 0"),
        ({"model_config": "tiny"}, "MODEL_CONFIG must be a DecoderConfig"),
        ({"mesh_shape": (2, 2)}, "TrainConfig.mesh_shape must be three sizes"),
        ({"mesh_shape": (0, 1, 1)}, "TrainConfig.mesh_shape must be three sizes"),
        ({"optimizer": "adamw"}, "TrainConfig.optimizer must be an optax transformation"),
        ({"initial_checkpoint_path": ""}, "INITIAL_CHECKPOINT_PATH (TrainConfig.initial_chec"),
        ({"tensorboard_dir": 1}, "TrainConfig.tensorboard_dir must be None or a non-empty"),
        ({"describe_data": "no"}, "TrainConfig.describe_data must be True or False"),
    ],
)
def test_each_bad_train_setting_is_a_one_line_error_naming_it(changes, message):
    with pytest.raises(ConfigError) as error:
        TrainConfig(**{**TRAIN, **changes})
    assert message in one_line(error)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mixture_or_task_name": 7}, "MIXTURE_OR_TASK_NAME must be a task or mixture name"),
        ({"task_feature_lengths": {"inputs": 8}}, 'TASK_FEATURE_LENGTHS must be {"targets"'),
        ({"task_feature_lengths": [32]}, 'TASK_FEATURE_LENGTHS must be {"targets": length}'),
        ({"task_feature_lengths": {"targets": 0}}, 'TASK_FEATURE_LENGTHS["targets"] must be a'),
        ({"validation_mixture_or_task_name": 3}, "VALIDATION_MIXTURE_OR_TASK_NAME (DataConfig"),
        ({"pack": 1}, "DataConfig.pack must be True or False, got 1"),
    ],
)
def test_each_bad_data_setting_is_a_one_line_error_naming_it(changes, message):
    with pytest.raises(ConfigError) as error:
        DataConfig(**{**DATA, **changes})
    assert message in one_line(error)


def test_rows_longer_than_the_model_are_refused():
    data = DataConfig("demo_pinch", {"targets": 128})
    with pytest.raises(ConfigError) as error:
        data.check_model(MODEL)
    assert one_line(error) == (
        'TASK_FEATURE_LENGTHS["targets"] = 128 is longer than the model\'s max_length 64'
    )
    DataConfig(**DATA).check_model(MODEL)


def test_configs_are_frozen_and_keep_their_own_lengths():
    lengths = {"targets": 32}
    data = DataConfig("demo_pinch", lengths)
    config = TrainConfig(**{**TRAIN, "mesh_shape": [1, -1, 1]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train_steps = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.mixture_or_task_name = "other"
    lengths["targets"] = 4096
    assert data.length == 32 and data.validation_mixture == "demo_pinch"
    assert config.mesh_shape == (1, -1, 1)
    assert config.replace(train_steps=5).train_steps == 5 and config.train_steps == 10
    with pytest.raises(ConfigError, match="TRAIN_STEPS"):
        config.replace(train_steps=0)


RUN = ["models/tiny.gin", "runs/finetune.gin"]


def test_gin_makes_both_configs_from_the_run_files():
    bindings = ['MODEL_DIR = "/tmp/r"', 'MIXTURE_OR_TASK_NAME = "demo_pinch"', "TRAIN_STEPS = 7"]
    gin_utils.configure(gin_utils.GinArgs(files=RUN, bindings=[*bindings, "SEED = 3"]))
    config, data = from_gin()
    assert (config.model_dir, config.train_steps, config.seed, config.batch_size) == (
        "/tmp/r",
        7,
        3,
        16,
    )
    assert config.model_config.num_layers == 2 and callable(config.optimizer)
    assert data == DataConfig("demo_pinch", {"targets": 128})
    gin_utils.configure(gin_utils.GinArgs(files=RUN, bindings=[*bindings, "BATCH_SIZE = 0"]))
    with pytest.raises(ConfigError, match=r"^BATCH_SIZE \(TrainConfig.batch_size\)"):
        from_gin()


def test_without_a_run_file_the_missing_bindings_are_named():
    gin_utils.configure(gin_utils.GinArgs(files=["models/tiny.gin"]))
    with pytest.raises(ConfigError) as error:
        from_gin()
    assert "TrainConfig" in one_line(error) and "runs/finetune.gin" in one_line(error)


def test_an_old_train_binding_is_refused_by_gin():
    args = gin_utils.GinArgs(files=RUN, bindings=['MODEL_DIR = "/x"', "train.train_steps = 3"])
    with pytest.raises(gin_utils.GinError, match="train"):
        gin_utils.configure(args)


# --- the study plan reads TRAIN_STEPS from the TrainConfig gin makes ---------------------------


def planner(tmp_path, text, bindings=()):
    """A plan of one run whose experiment file is ``text``."""
    experiment = tmp_path / "experiment.gin"
    experiment.write_text(f"include 'runs/finetune.gin'\n{text}\n")
    study = dataclasses.replace(
        catalog.STUDIES["demo_multi_k"],
        conditions=(grid.Condition("only", str(experiment)),),
        train_overrides={},
        quick=None,
    )
    root = tmp_path / "root"
    return Planner(study, Options(root=str(root), bindings=bindings)), study.conditions[0], root


def test_the_plan_reads_the_steps_from_the_run_s_gin_file(tmp_path):
    plan, condition, root = planner(tmp_path, 'MIXTURE_OR_TASK_NAME = "x"\nTRAIN_STEPS = 42')
    assert plan.train_config(condition).train_steps == 42
    assert plan.final_checkpoint(condition) == root / "only" / "checkpoint_42"
    assert plan.train_config(condition).model_dir == str(root / "only")


def test_a_command_line_train_steps_wins_over_the_file(tmp_path):
    plan, condition, root = planner(tmp_path, "TRAIN_STEPS = 42", bindings=("TRAIN_STEPS=5",))
    assert plan.final_checkpoint(condition) == root / "only" / "checkpoint_5"


def test_steps_from_epochs_are_the_ones_the_finished_run_recorded(tmp_path):
    plan, condition, root = planner(tmp_path, "TRAIN_STEPS = None\nNUM_EPOCHS = 2")
    assert plan.train_config(condition).num_epochs == 2
    assert plan.final_checkpoint(condition) is None
    write_state(root / "only", train_step=9)
    assert plan.final_checkpoint(condition) == root / "only" / "checkpoint_9"


def test_a_refused_value_in_the_run_s_files_is_named(tmp_path):
    plan, condition, _ = planner(tmp_path, "TRAIN_STEPS = 0")
    with pytest.raises(ConfigError, match=r"TRAIN_STEPS \(TrainConfig.train_steps\)"):
        plan.final_checkpoint(condition)
    assert gin.config_str() == ""


def test_the_plan_leaves_the_process_gin_config_as_it_was(tmp_path):
    args = gin_utils.GinArgs(files=["models/tiny.gin"], bindings=["DecoderConfig.num_layers = 3"])
    gin_utils.configure(args)  # finalized: locked
    assert DecoderConfig().num_layers == 3
    before = (gin.config_str(), gin.operative_config_str())
    plan, condition, _ = planner(tmp_path, "TRAIN_STEPS = 42")
    assert plan.final_checkpoint(condition).name == "checkpoint_42"
    assert (gin.config_str(), gin.operative_config_str()) == before
    assert gin.config_is_locked()
    assert DecoderConfig().num_layers == 3
    with pytest.raises(ValueError, match="TrainConfig"):
        gin.query_parameter("TrainConfig.train_steps")


def test_an_isolated_config_is_undone_after_an_error():
    gin.parse_config("import polyglot_jax.models.config\nDecoderConfig.num_layers = 5")
    with pytest.raises(RuntimeError), gin_utils.isolated_config():
        gin.parse_config("DecoderConfig.num_layers = 7\nX = 1")
        raise RuntimeError("stop")
    assert gin.query_parameter("DecoderConfig.num_layers") == 5
    assert "X" not in gin.config_str()
