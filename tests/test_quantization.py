"""Weight-only int8 quantization (qwix): each kernel equal to its per-output-channel absmax
int8 rounding, on one device and on a mesh; a loaded run's scores and greedy answers."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from polyglot_jax.errors import ConfigError
from polyglot_jax.inference.config import InferConfig
from polyglot_jax.models import Decoder, DecoderConfig
from polyglot_jax.models.decoder import stack_layers
from polyglot_jax.runtime import quantization
from polyglot_jax.runtime.chat_model import ChatModel

CONFIG = DecoderConfig(
    vocab_size=64,
    embed_dim=32,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    head_dim=8,
    mlp_dim=64,
    max_length=64,
)
# Contracted (input) axes of each kernel: the scale is per output channel, over the others.
INPUT_AXES = {"o_proj": (0, 1)}


def _params(config: DecoderConfig = CONFIG):
    tokens = jnp.ones((1, 8), jnp.int32)
    return nn.unbox(Decoder(config).init(jax.random.PRNGKey(0), tokens))["params"]


def kernels(tree, path=()):
    """``(path, kernel)`` of every ``kernel`` leaf (float arrays or qwix's quantized ones)."""
    for key, value in tree.items():
        if key == "kernel":
            yield (*path, key), value
        elif isinstance(value, dict):
            yield from kernels(value, (*path, key))


def at(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def test_int8_kernels_are_their_per_channel_absmax_rounding():
    params = _params()
    quantized, qparams = quantization.quantize(Decoder(CONFIG), params, "int8")
    assert quantized.config.weight_quantization == "int8"
    dequantized = jax.tree.map(lambda x: x, params)
    found = 0
    for path, kernel in kernels(qparams):
        found += 1
        value, scale = np.asarray(kernel.array.qvalue), np.asarray(kernel.array.scale)
        original = np.asarray(at(params, path))
        axes = INPUT_AXES.get(path[-2], (0,))
        # qwix's symmetric absmax: scale absmax / 127.5 per output channel, values rounded
        # (within one step of a hand rounding: qwix multiplies by the reciprocal).
        absmax = np.abs(original).max(axis=axes, keepdims=True)
        np.testing.assert_allclose(scale, absmax / 127.5, rtol=1e-6, err_msg=str(path))
        assert value.dtype == np.int8 and value.min() >= -128
        assert np.abs(value - np.clip(np.round(original / scale), -128, 127)).max() <= 1
        at(dequantized, path[:-1])["kernel"] = jnp.asarray(value * scale)
    assert found == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer; the LM head
    tokens = np.arange(1, 25, dtype=np.int32)[None] % CONFIG.vocab_size
    ours, _ = quantized.apply({"params": qparams}, tokens)
    reference, _ = Decoder(CONFIG).apply({"params": dequantized}, tokens)
    np.testing.assert_allclose(ours, reference, atol=1e-5)  # the einsums read the int8 values
    full, _ = Decoder(CONFIG).apply({"params": params}, tokens)
    assert np.abs(np.asarray(full) - np.asarray(reference)).max() > 1e-4  # it did round
    assert quantization.weight_bytes(qparams) < 0.4 * quantization.weight_bytes(params)


def test_a_loaded_run_answers_in_int8(tmp_path, random_run, demo_tasks):
    run = random_run(tmp_path / "run", CONFIG, {"mixture_or_task_name": "demo_uniform"})
    full, int8 = ChatModel.load(run), ChatModel.load(run, quantization="int8")
    tokens = np.arange(1, 25, dtype=np.int32)[None] % CONFIG.vocab_size
    targets, weights = np.roll(tokens, -1, axis=1), np.ones(tokens.shape, np.float32)
    ours, reference = int8.score(tokens, targets, weights), full.score(tokens, targets, weights)
    assert not np.array_equal(ours, reference)
    np.testing.assert_allclose(ours, reference, atol=0.05)
    prompts = [[1, 2, 3], [4, 5, 6, 7, 8]]
    assert int8.generate(prompts, 8).tokens == full.generate(prompts, 8).tokens


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="quantization 'int4': choose from none, int8"):
        quantization.check("int4")
    with pytest.raises(ConfigError, match=r"WEIGHT_QUANTIZATION \(InferConfig.quantization\)"):
        InferConfig("run", "task", quantization="fp8")
    with pytest.raises(ConfigError, match="weight_quantization must be one of"):
        DecoderConfig(weight_quantization="int4")


MESH_SCRIPT = """
import json, sys
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, {tests!r})
import test_quantization as t
from polyglot_jax.models import Decoder
from polyglot_jax.runtime import quantization
from polyglot_jax.runtime.model import LanguageModel, inference_mesh
params, out = t._params(), {{}}
tokens = np.tile(np.arange(1, 17, dtype=np.int32)[None], (4, 1))
for shape in [None, (1, -1, 1), (1, 2, 2)]:
    mesh = None if shape is None else inference_mesh(shape)
    model = LanguageModel.place(Decoder(t.CONFIG), params, mesh) if mesh else (
        LanguageModel(Decoder(t.CONFIG), params))
    q, qp = quantization.quantize(model.decoder, model.params, "int8", mesh, model.rules)
    qmodel = LanguageModel(q, qp, mesh, model.rules)
    scores = qmodel.score(tokens, np.roll(tokens, -1, 1), np.ones(tokens.shape, np.float32))
    out[str(shape)] = [np.asarray(scores).tolist(), qmodel.generate([[1, 2], [3]], 6, [0]).tokens]
print(json.dumps(out))
"""


def test_int8_on_a_mesh_equals_one_device(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    script = MESH_SCRIPT.format(tests=os.path.dirname(__file__))
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    one = out.pop("None")
    for shape, (scores, tokens) in out.items():
        np.testing.assert_allclose(scores, one[0], atol=1e-5, err_msg=shape)
        assert tokens == one[1], shape


def test_scanned_layers_are_unrolled_then_quantized():
    params = _params()
    scanned_config = CONFIG.replace(scan_layers=True)
    scanned = stack_layers(params, CONFIG.num_layers)
    model, qparams = quantization.quantize(Decoder(scanned_config), scanned, "int8")
    assert not model.config.scan_layers and "layers_1" in qparams
    reference_model, reference = quantization.quantize(Decoder(CONFIG), params, "int8")
    tokens = np.arange(1, 25, dtype=np.int32)[None] % CONFIG.vocab_size
    ours, _ = model.apply({"params": qparams}, tokens)
    expected, _ = reference_model.apply({"params": reference}, tokens)
    np.testing.assert_allclose(ours, expected, atol=1e-6)
