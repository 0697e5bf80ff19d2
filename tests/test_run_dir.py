"""The run directory: one owner, refused mismatches, validated settings, a logged plan."""

import json
import shutil

import pytest

from polyglot_jax import errors
from polyglot_jax.cli import common, train
from polyglot_jax.models import DecoderConfig
from polyglot_jax.runtime import chat_model
from polyglot_jax.training import loop, runs
from polyglot_jax.training.config import DataConfig, TrainConfig

TINY = DecoderConfig(
    vocab_size=1024,
    embed_dim=32,
    num_layers=1,
    num_heads=2,
    num_kv_heads=1,
    head_dim=16,
    mlp_dim=64,
    max_length=64,
)


def tiny_run(model_dir, steps=1, config=TINY, mixture="demo_pinch", **kwargs):
    settings = TrainConfig(
        str(model_dir),
        config,
        batch_size=2,
        train_steps=steps,
        describe_data=False,
        eval_every=0,
        **kwargs,
    )
    return loop.train(settings, DataConfig(mixture, {"targets": 32}), progress=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_tasks):
    run_dir = tmp_path_factory.mktemp("run") / "pinch"
    tiny_run(run_dir, steps=2, checkpoint_every=1)
    return run_dir


def test_resume_with_another_model_is_refused_before_anything_is_written(trained, tmp_path):
    before = {name: (trained / name).read_bytes() for name in ("model_config.json", "config.gin")}
    with pytest.raises(errors.RunDirError, match=r"num_layers \(1 -> 2\)"):
        tiny_run(trained, steps=3, config=TINY.replace(num_layers=2))
    assert {name: (trained / name).read_bytes() for name in before} == before
    model, params = runs.load_model(trained)
    assert model.config == TINY and params is not None


def test_sources_resolve_to_the_run(trained):
    source = runs.resolve(trained / "checkpoint_1")
    assert (source.run_dir, source.step) == (trained, 1)
    assert source.output_dir("structured") == trained / "structured"
    assert source.chat_format()["template"] == "guanaco"
    assert json.loads((trained / "chat_format.json").read_text())["mixture_or_task_name"] == (
        "demo_pinch"
    )
    assert chat_model.model_vocabulary(source).vocab_size <= TINY.vocab_size
    with pytest.raises(errors.CheckpointError, match="checkpoint_9 does not exist"):
        runs.resolve(trained / "checkpoint_9")
    with pytest.raises(errors.RunDirError, match="neither a run directory"):
        runs.resolve(trained / "train")


def test_corrupt_model_config_is_named(tmp_path):
    (tmp_path / "model_config.json").write_text("{not json")
    with pytest.raises(errors.RunDirError, match=r"model_config\.json: not a model configuration"):
        runs.load_model(tmp_path)


CLI = [
    "--gin_file=models/tiny.gin",
    "--gin_file=runs/finetune.gin",
    '--gin.MIXTURE_OR_TASK_NAME="demo_pinch"',
]


@pytest.mark.parametrize(
    ("binding", "message"),
    [
        ("TRAIN_STEPS=0", "must be a positive integer, got 0"),
        ("BATCH_SIZE=0", "BATCH_SIZE (TrainConfig.batch_size) must be a positive integer, got 0"),
        (
            'BATCH_SIZE="8"',
            "BATCH_SIZE (TrainConfig.batch_size) must be a positive integer, got '8'",
        ),
        (
            "BATCH_SIZE=2.5",
            "BATCH_SIZE (TrainConfig.batch_size) must be a positive integer, got 2.5",
        ),
        ("MICROBATCHES=-1", "MICROBATCHES (TrainConfig.microbatches) must be a positive integer"),
        ('TASK_FEATURE_LENGTHS={"inputs": 8}', 'TASK_FEATURE_LENGTHS must be {"targets": length}'),
        ('TASK_FEATURE_LENGTHS={"targets": 4096}', "longer than the model's max_length 256"),
        ("EVAL_EVERY=-2", "EVAL_EVERY (TrainConfig.eval_every) must be an integer >= 0"),
        ('MIXTURE_OR_TASK_NAME="nope"', "no SeqIO task or mixture named 'nope'"),
        ("MIXTURE_OR_TASK_NAME=7", "MIXTURE_OR_TASK_NAME must be a task or mixture name, got 7"),
        ('MODEL_DIR=""', "MODEL_DIR (TrainConfig.model_dir) must be a non-empty path"),
    ],
)
def test_bad_run_settings_are_one_line_errors(tmp_path, capsys, binding, message):
    argv = [*CLI, f'--gin.MODEL_DIR="{tmp_path / "run"}"', f"--gin.{binding}"]
    assert common.run(lambda: train.main(argv)) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert message in lines[0]
    assert not (tmp_path / "run" / "checkpoint_1").exists()


def test_a_run_logs_what_it_trains(tmp_path, demo_tasks, capsys):
    argv = [
        "--gin_file=mix_pinch.gin",
        f'--gin.MODEL_DIR="{tmp_path}"',
        "--gin.TRAIN_STEPS=1",
        "--gin.BATCH_SIZE=2",
        "--gin.TrainConfig.describe_data=False",
        "--gin.EVAL_EVERY=0",
    ]
    assert common.run(lambda: train.main(argv)) == 0
    text = capsys.readouterr().err
    assert "gin files: " in text and "mix_pinch.gin" in text
    assert "using the default models/tiny.gin" in text
    assert "optimizer: AdamW, peak learning rate 0.003" in text
    assert "training llama 2 layers x 128" in text and "parameters" in text
    assert "demo_pinch" in text and "steps 1 to 1" in text


def test_a_run_keeps_its_tokenizer_for_later_processes(tmp_path, demo_tasks, sentencepiece_dir):
    import seqio

    from polyglot_jax.data import recipes, vocab

    hf_vocab = vocab.load_vocabulary(sentencepiece_dir)
    name = "run_dir_test_recipe"  # a recipe exists only in the process whose gin made it
    recipes.register_mixture(
        name, demo_tasks.DEMO, recipes.monolingual(demo_tasks.DEMO, "en"), hf_vocab
    )
    tiny_run(tmp_path / "run", mixture=name)
    assert (tmp_path / "run" / "tokenizer" / "tokenizer.model").exists()
    seqio.MixtureRegistry.remove(name)  # as in a new process
    text = "Kuinka monta kissaa? 42"
    source = runs.resolve(tmp_path / "run")
    assert chat_model.model_vocabulary(source).encode(text) == hf_vocab.encode(text)

    shutil.rmtree(tmp_path / "run" / "tokenizer")
    with pytest.raises(errors.RunDirError, match="records neither a tokenizer/ folder nor a"):
        chat_model.model_vocabulary(source)


def test_the_demo_vocabulary_is_not_copied(trained):
    assert not (trained / "tokenizer").exists()
