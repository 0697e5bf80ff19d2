"""The dtype a loaded model serves in: bfloat16 by default on accelerators, the checkpoint's on
CPU, or one the user forces; the checkpoint's arrays are cast as they are read."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from polyglot_jax.errors import ConfigError
from polyglot_jax.inference.config import InferConfig
from polyglot_jax.runtime import model as model_lib
from polyglot_jax.runtime.chat_model import ChatModel


def test_auto_is_bfloat16_on_accelerators_and_the_checkpoints_on_cpu(monkeypatch):
    assert model_lib.inference_dtype("auto") is None  # this machine: CPU
    assert model_lib.inference_dtype("checkpoint") is None
    assert model_lib.inference_dtype("float32") == "float32"
    for backend in ("gpu", "tpu"):
        monkeypatch.setattr(jax, "default_backend", lambda b=backend: b)
        assert model_lib.inference_dtype("auto") == "bfloat16"
    with pytest.raises(ConfigError, match="inference dtype 'int4': choose from auto"):
        model_lib.inference_dtype("int4")
    with pytest.raises(ConfigError, match=r"MODEL_DTYPE \(InferConfig.dtype\) must be one of"):
        InferConfig("run", "task", dtype="half")


def test_a_run_served_in_bfloat16_stays_close_to_float32(
    tmp_path, random_run, demo_tasks, tiny_config
):
    run = random_run(tmp_path / "run", tiny_config, {"mixture_or_task_name": "demo_uniform"})
    full = ChatModel.load(run)
    half = ChatModel.load(run, dtype="bfloat16")
    assert {a.dtype for a in jax.tree.leaves(full.params)} == {jnp.dtype("float32")}
    assert {a.dtype for a in jax.tree.leaves(half.params)} == {jnp.dtype("bfloat16")}
    assert half.decoder.config.dtype == "bfloat16" and full.decoder.config.dtype == "float32"
    tokens = np.arange(1, 25, dtype=np.int32)[None] % tiny_config.vocab_size
    weights = np.ones_like(tokens, dtype=np.float32)
    targets = np.roll(tokens, -1, axis=1)
    ours = np.asarray(half.score(tokens, targets, weights))
    reference = np.asarray(full.score(tokens, targets, weights))
    assert not np.array_equal(ours, reference)  # the cast happened
    np.testing.assert_allclose(ours, reference, atol=0.05)  # bfloat16 keeps 8 mantissa bits
