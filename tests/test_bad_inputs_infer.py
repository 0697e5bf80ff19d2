"""``polyglot-jax infer`` with bad inputs: one ``error:`` line naming the culprit, exit 2.

The run is a one-layer decoder with random parameters saved by the Checkpointer, so the table
runs in seconds; ``{run}`` and ``{tmp}`` in a case stand for its run directory and a folder of
bad inputs.
"""

import json
import os
import pathlib
import shutil

import jax
import jax.numpy as jnp
import pytest
from flax import linen as nn

from polyglot_jax import cli
from polyglot_jax.inference import output_files
from polyglot_jax.models import Decoder, DecoderConfig, hf

TASK = '--gin.MIXTURE_OR_TASK_NAME="demo_uniform.fi"'


@pytest.fixture(scope="module")
def tmp(tmp_path_factory, demo_tasks, random_run) -> pathlib.Path:
    """A folder with a tiny trained-looking run (``run``) and bad inputs beside it."""

    root = tmp_path_factory.mktemp("bad_inputs")
    run = root / "run"
    run.mkdir()
    config = DecoderConfig(
        vocab_size=demo_tasks.VOCABULARY.vocab_size,
        embed_dim=32,
        num_layers=1,
        num_heads=2,
        num_kv_heads=1,
        head_dim=16,
        mlp_dim=64,
        max_length=128,
    )
    random_run(run, config, {"mixture_or_task_name": "demo_uniform"})

    (root / "not_a_run").mkdir()
    (root / "corrupt_run").mkdir()
    (root / "corrupt_run" / "model_config.json").write_text("{not json")
    (root / "prompts_zz.jsonl").write_text('{"id": "1", "prompt": "hi"}\n')
    (root / "malformed_fi.jsonl").write_text('not json\n{"id": "2", "prompt": 3}\n')
    (root / "a_file").write_text("")
    _bad_runs(root, run, config)
    return root


def _bad_runs(root: pathlib.Path, run: pathlib.Path, config: DecoderConfig) -> None:
    """Runs, Hugging Face folders and output folders that infer must refuse, beside ``run``."""
    answer = {"id": "1", "lang": "fi", "prompt": "Moi", "response": "Hei", "sample": 0}
    for name, line, settings in (
        ("decoded", answer, {"temperature": 0.0, "max_new_tokens": 64, "seed": 0}),
        ("list_id", {**answer, "id": ["1"]}, None),
    ):
        (root / name).mkdir()
        (root / name / "demo_uniform.fi.jsonl").write_text(json.dumps(line) + "\n")
        if settings is not None:
            (root / name / "decoding.json").write_text(json.dumps(settings))
    shutil.copytree(run, root / "cut_format_run")
    (root / "cut_format_run" / "chat_format.json").write_text('{"mixture_or_task_name": "dem')
    shutil.copytree(run, root / "other_size_run")
    bigger = config.replace(embed_dim=64, mlp_dim=128)
    (root / "other_size_run" / "model_config.json").write_text(json.dumps(bigger.to_dict()))

    init = Decoder(config).init(jax.random.PRNGKey(0), jnp.ones((1, 8), jnp.int32))
    params = nn.unbox(init)["params"]
    hf.export(params, config, root / "hf")
    hf_config = json.loads((root / "hf" / "config.json").read_text())
    weights = (root / "hf" / "model.safetensors").read_bytes()
    variants = {
        "hf_cut_weights": (hf_config, weights[: len(weights) // 2]),
        "hf_classifier": ({**hf_config, "architectures": ["LlamaForSequenceClassification"]}, b""),
        "hf_custom_code": ({**hf_config, "auto_map": {"AutoModelForCausalLM": "m.Custom"}}, b""),
    }
    for name, (hf_json, weight_bytes) in variants.items():
        (root / name).mkdir()
        (root / name / "config.json").write_text(json.dumps(hf_json))
        (root / name / "model.safetensors").write_bytes(weight_bytes or weights)
    (root / "hf_cut_config").mkdir()
    (root / "hf_cut_config" / "config.json").write_text('{"model_type": "llama", "vocab')


def infer(tmp: pathlib.Path, *flags: str) -> int:
    argv = ["infer", "--gin_file=runs/infer.gin"]
    defaults = {
        "--gin.CHECKPOINT_PATH": '--gin.CHECKPOINT_PATH="{run}"',
        "--gin.INFER_OUTPUT_DIR": '--gin.INFER_OUTPUT_DIR="{tmp}/out"',
        "--gin.MIXTURE_OR_TASK_NAME": TASK,
    }
    given = {f.partition("=")[0] for f in flags}
    argv += [v for k, v in defaults.items() if k not in given] + list(flags)
    return cli.main([a.format(run=tmp / "run", tmp=tmp) for a in argv])


CASES = {
    "missing run": (['--gin.CHECKPOINT_PATH="{tmp}/nope"'], "{tmp}/nope does not exist"),
    "not a run": (['--gin.CHECKPOINT_PATH="{tmp}/not_a_run"'], "not_a_run is neither a run"),
    "corrupt model config": (
        ['--gin.CHECKPOINT_PATH="{tmp}/corrupt_run"'],
        "corrupt_run/model_config.json: not a model configuration",
    ),
    "missing checkpoint step": (
        ['--gin.CHECKPOINT_PATH="{run}/checkpoint_7"'],
        "checkpoint_7 does not exist (have: ['checkpoint_1'])",
    ),
    "unknown task": (['--gin.MIXTURE_OR_TASK_NAME="nope"'], "named 'nope'"),
    "task not a name": (["--gin.MIXTURE_OR_TASK_NAME=42"], "MIXTURE_OR_TASK_NAME"),
    "batch size 0": (
        ["--gin.BATCH_SIZE=0"],
        "BATCH_SIZE (InferConfig.batch_size) must be a positive integer, got 0",
    ),
    "batch size -1": (["--gin.BATCH_SIZE=-1"], "BATCH_SIZE (InferConfig.batch_size)"),
    "batch size x": (['--gin.BATCH_SIZE="x"'], "BATCH_SIZE (InferConfig.batch_size)"),
    "batch size 2.5": (["--gin.BATCH_SIZE=2.5"], "BATCH_SIZE (InferConfig.batch_size)"),
    "max new tokens 0": (["--gin.MAX_NEW_TOKENS=0"], "MAX_NEW_TOKENS (InferConfig.max_new_tokens)"),
    "seed x": (['--gin.SEED="x"'], "SEED (InferConfig.seed) must be an integer"),
    "unknown split": (['--gin.SPLIT="test"'], "SPLIT (InferConfig.split): demo_uniform.fi has no"),
    "temperature -1": (["--gin.TEMPERATURE=-1"], "temperature"),
    "top_p 2": (["--gin.TOP_P=2"], "top_p"),
    "top_k -1": (["--gin.TOP_K=-1"], "top_k"),
    "num samples 0": (["--gin.NUM_SAMPLES=0"], "num_samples"),
    "missing prompt file": (
        ['--gin.PROMPT_FILES=["{tmp}/none_fi.jsonl"]'],
        "PROMPT_FILES: {tmp}/none_fi.jsonl does not exist",
    ),
    "prompt file of an unknown language": (
        ['--gin.PROMPT_FILES=["{tmp}/prompts_zz.jsonl"]'],
        "prompts_zz.jsonl: the name must end in _<language code>.jsonl",
    ),
    "prompt file without a usable line": (
        ['--gin.PROMPT_FILES=["{tmp}/malformed_fi.jsonl"]'],
        "malformed_fi.jsonl: no usable prompts (skipped 2 bad lines)",
    ),
    "prompt files not a list": (
        ['--gin.PROMPT_FILES="{tmp}/malformed_fi.jsonl"'],
        "PROMPT_FILES (InferConfig.prompt_files) must be a list",
    ),
    "output dir is a file": (['--gin.INFER_OUTPUT_DIR="{tmp}/a_file"'], "a_file"),
    "unknown macro": (
        ["--gin.BATCH_SIZ=8"],
        "unknown gin macro BATCH_SIZ: runs/infer.gin does not define it; did you mean BATCH_SIZE?",
    ),
    "unknown parameter": (["--gin.InferConfig.batch_sz=8"], "'batch_sz'"),
    "bad gin syntax": (["--gin.BATCH_SIZE=3 4"], "gin: Expected newline"),
    "missing required macro": (
        ["--gin.CHECKPOINT_PATH=%gin.REQUIRED"],
        "gin macro CHECKPOINT_PATH is required",
    ),
    "missing gin file": (["--gin_file=runs/nope.gin"], "runs/nope.gin"),
    "unknown argument": (["--batch_size=8"], "unknown arguments: --batch_size=8"),
    "resumed with other decoding settings": (
        ['--gin.INFER_OUTPUT_DIR="{tmp}/decoded"', "--gin.TEMPERATURE=0.7"],
        "{tmp}/decoded holds answers decoded with other settings: temperature 0.0 (now 0.7)",
    ),
    "resumed output whose id is a list": (
        ['--gin.INFER_OUTPUT_DIR="{tmp}/list_id"'],
        "list_id/demo_uniform.fi.jsonl:1: 'id' must be a string",
    ),
    "truncated chat format": (
        ['--gin.CHECKPOINT_PATH="{tmp}/cut_format_run"'],
        "cut_format_run/chat_format.json: not JSON",
    ),
    "checkpoint of another model size": (
        ['--gin.CHECKPOINT_PATH="{tmp}/other_size_run"'],
        "other_size_run/checkpoint_1 holds a model of another size",
    ),
    "truncated safetensors": (
        ['--gin.CHECKPOINT_PATH="{tmp}/hf_cut_weights"'],
        "hf_cut_weights/model.safetensors: not a readable safetensors file",
    ),
    "hf config that is not JSON": (
        ['--gin.CHECKPOINT_PATH="{tmp}/hf_cut_config"'],
        "hf_cut_config/config.json: not JSON",
    ),
    "hf classification head": (
        ['--gin.CHECKPOINT_PATH="{tmp}/hf_classifier"'],
        "architectures ['LlamaForSequenceClassification'] is not a causal language model",
    ),
    "hf custom code": (
        ['--gin.CHECKPOINT_PATH="{tmp}/hf_custom_code"'],
        "hf_custom_code/config.json: auto_map points to custom modelling code",
    ),
}


@pytest.mark.parametrize("flags,culprit", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_error_line(tmp, capsys, flags, culprit):
    assert infer(tmp, *flags) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert culprit.format(tmp=tmp, run=tmp / "run") in errors[0]
    assert "Traceback" not in err


def test_locked_output_dir_is_busy(tmp, capsys):
    out = tmp / "locked"
    with output_files.locked(out):
        assert infer(tmp, f'--gin.INFER_OUTPUT_DIR="{out}"') == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"error: {out} is in use by another infer process (pid {os.getpid()}); "
        f"wait for it or pass another INFER_OUTPUT_DIR"
    )


def test_malformed_prompt_lines_are_skipped_and_counted(tmp, capsys):
    prompts = tmp / "mixed_fi.jsonl"
    good = [json.dumps({"id": f"p{i}", "prompt": f"Moi {i}"}) for i in range(3)]
    prompts.write_text("\n".join([good[0], "not json", good[1], '{"id": "x"}', good[2]]) + "\n")
    out = tmp / "mixed_out"
    flags = [f'--gin.PROMPT_FILES=["{prompts}"]', f'--gin.INFER_OUTPUT_DIR="{out}"']
    assert infer(tmp, *flags, "--gin.MAX_NEW_TOKENS=2") == 0
    assert "skipped 2 bad lines" in capsys.readouterr().err
    lines = [json.loads(x) for x in (out / "mixed_fi.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == ["p0", "p1", "p2"]
