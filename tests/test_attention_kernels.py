"""Attention kernels (``DecoderConfig.attention_impl``): parity with the einsum path and choice.

CPU runs the fused paths as references: ``jax.nn.dot_product_attention(implementation="xla")``
is the very call the cuDNN path makes with ``implementation="cudnn"``, and the splash kernel runs
in Pallas interpret mode. Both are compared with the einsum path on packed batches (segment ids,
padding), forward (logits) and backward (parameter gradients of a token-weighted loss).
"""

import functools
import itertools
import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from polyglot_jax.models import Decoder, DecoderConfig, kernels

# float32 throughout: both sides compute the same scores and softmax; they differ in scaling
# (q·k / sqrt(d) versus q·k · (1/sqrt(d)), or q pre-scaled for splash) and summation order.
TOL = dict(rtol=1e-5, atol=1e-5)


def packed(length: int, seed: int = 0) -> tuple[jax.Array, jax.Array, jax.Array, np.ndarray]:
    """Tokens, positions, segment ids [2, length] with 3 + 1 segments and padding; valid mask."""
    cuts = [[0, length // 4, length // 2, length - 3], [0, length - 5]]
    segments = np.zeros((2, length), np.int32)
    positions = np.zeros((2, length), np.int32)
    for row, row_cuts in enumerate(cuts):
        for seg, (a, b) in enumerate(itertools.pairwise(row_cuts)):
            segments[row, a:b] = seg + 1
            positions[row, a:b] = np.arange(b - a)
    tokens = np.random.RandomState(seed).randint(1, 64, (2, length)) * (segments > 0)
    return jnp.asarray(tokens), jnp.asarray(positions), jnp.asarray(segments), segments > 0


def init(cfg: DecoderConfig) -> dict:
    tokens = jnp.ones((1, 8), jnp.int32)
    return nn.unbox(Decoder(cfg).init(jax.random.PRNGKey(1), tokens))["params"]


def logits_and_grads(cfg: DecoderConfig, params: dict, length: int) -> tuple:
    """Logits (real tokens) and parameter gradients of a loss over real tokens."""
    tokens, positions, segments, valid = packed(length)
    model = Decoder(cfg)
    weights = jnp.asarray(valid, jnp.float32)[..., None]

    def loss(p: dict) -> tuple[jax.Array, jax.Array]:
        logits, _ = model.apply({"params": p}, tokens, positions, segments)
        return jnp.sum(jax.nn.log_softmax(logits) * weights), logits

    grads, logits = jax.jit(jax.grad(loss, has_aux=True))(params)
    return np.where(valid[..., None], logits, 0), grads


def assert_same(got: tuple, expected: tuple) -> None:
    np.testing.assert_allclose(got[0], expected[0], **TOL, err_msg="logits")
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(expected[1]), jax.tree.leaves(got[1]), strict=True
    ):
        np.testing.assert_allclose(b, a, **TOL, err_msg=jax.tree_util.keystr(path))


def with_kernel(monkeypatch: pytest.MonkeyPatch, impl: str, fn: object) -> None:
    """Routes the model's attention through ``fn`` as if ``impl`` had been chosen."""
    monkeypatch.setattr(kernels, "select", lambda *a, **k: impl)
    monkeypatch.setattr(kernels, "fused_attention", lambda _impl, *args: fn(*args))


@pytest.mark.parametrize(
    ("kv_heads", "window"), [(2, None), (1, None), (2, 5)], ids=["gqa", "mqa", "gqa-window"]
)
def test_dot_product_attention_matches_the_einsum_path(tiny_config, monkeypatch, kv_heads, window):
    cfg = tiny_config.replace(num_kv_heads=kv_heads, sliding_window=window, num_layers=1)
    params = init(cfg)
    expected = logits_and_grads(cfg, params, 16)
    xla = functools.partial(kernels.dot_product_attention, implementation="xla")
    with_kernel(monkeypatch, "cudnn", xla)
    assert_same(logits_and_grads(cfg, params, 16), expected)


@pytest.mark.parametrize(("kv_heads", "window"), [(2, None), (1, 40)], ids=["gqa", "mqa-window"])
def test_splash_attention_in_interpret_mode_matches_the_einsum_path(
    tiny_config, monkeypatch, kv_heads, window
):
    cfg = tiny_config.replace(num_kv_heads=kv_heads, sliding_window=window, num_layers=1)
    params = init(cfg)
    expected = logits_and_grads(cfg, params, 128)
    splash = functools.partial(kernels.splash_attention, interpret=True)
    with_kernel(monkeypatch, "splash", splash)
    assert_same(logits_and_grads(cfg, params, 128), expected)


def choose(caplog: pytest.LogCaptureFixture, backend: str, **changes: object) -> tuple:
    """``(kernel, logged fallback lines)`` for a fresh log-once state."""
    kernels._LOGGED.clear()
    caplog.clear()
    cached = bool(changes.pop("cached", False))
    length = int(changes.pop("length", 2048))
    cfg = DecoderConfig(**{"dtype": "bfloat16", "head_dim": 128, **changes})
    with caplog.at_level(logging.WARNING, logger=kernels.__name__):
        impl = kernels.select(cfg, cached=cached, length=length, backend=backend)
    return impl, [r.getMessage() for r in caplog.records]


def test_auto_picks_the_backend_kernel_and_falls_back_where_a_feature_is_missing(caplog):
    assert choose(caplog, "cpu") == ("xla", [])
    assert choose(caplog, "gpu") == ("cudnn", [])
    assert choose(caplog, "tpu") == ("splash", [])
    assert choose(caplog, "gpu", sliding_window=4096) == ("cudnn", [])
    assert choose(caplog, "tpu", sliding_window=4096) == ("splash", [])
    for backend in ("gpu", "tpu"):
        impl, lines = choose(caplog, backend, position="alibi")
        assert impl == "xla" and "ALiBi" in lines[0]
        impl, lines = choose(caplog, backend, cached=True)
        assert impl == "xla" and "KV cache" in lines[0]
    impl, lines = choose(caplog, "gpu", dtype="float32")
    assert impl == "xla" and "bfloat16" in lines[0]
    impl, lines = choose(caplog, "tpu", length=200)
    assert impl == "xla" and "multiple of 128" in lines[0]


def test_splash_under_a_multi_device_mesh_is_chosen(caplog, monkeypatch):
    monkeypatch.setattr(kernels, "mesh_devices", lambda: 8)
    assert choose(caplog, "tpu") == ("splash", [])
    assert choose(caplog, "gpu")[0] == "cudnn"


def test_a_requested_kernel_the_backend_lacks_falls_back_and_logs_once(caplog):
    impl, lines = choose(caplog, "cpu", attention_impl="cudnn")
    assert impl == "xla" and lines == [
        "attention_impl=cudnn falls back to xla: the cpu backend has no cudnn kernel"
    ]
    cfg = DecoderConfig(attention_impl="splash")
    with caplog.at_level(logging.WARNING, logger=kernels.__name__):
        for _ in range(3):
            assert kernels.select(cfg, cached=False, length=128, backend="cpu") == "xla"
    assert len(caplog.records) == 2  # one for cudnn above, one for splash
    assert choose(caplog, "gpu", attention_impl="xla") == ("xla", [])


def test_the_model_on_cpu_runs_the_einsum_path_for_every_setting(tiny_config):
    tokens, positions, segments, _ = packed(16)
    outs = []
    for impl in ("auto", "xla", "cudnn", "splash"):
        model = Decoder(tiny_config.replace(attention_impl=impl))
        params = model.init(jax.random.PRNGKey(0), tokens)["params"]
        outs.append(model.apply({"params": params}, tokens, positions, segments)[0])
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


SPLASH_ON_A_MESH = """
import sys
import flax.linen as nn
import jax
sys.path.insert(0, {tests!r})
import test_attention_kernels as t
from polyglot_jax.models import DecoderConfig, kernels
from polyglot_jax.training import partitioning

cfg = DecoderConfig(vocab_size=64, embed_dim=32, num_layers=1, num_heads=4, num_kv_heads={kv},
                    head_dim=8, mlp_dim=64, max_length=128)
params = t.init(cfg)
mapped, shard_map = [], jax.shard_map
jax.shard_map = lambda f, **kw: mapped.append(kw["in_specs"]) or shard_map(f, **kw)
with jax.set_mesh(partitioning.create_mesh(1, 2, 2)), nn.logical_axis_rules(
    partitioning.standard_logical_axis_rules()
):
    expected = t.logits_and_grads(cfg, params, 128)
    kernels.select = lambda *a, **k: "splash"
    kernels.fused_attention = lambda _, *args: kernels.splash_attention(*args, interpret=True)
    t.assert_same(t.logits_and_grads(cfg, params, 128), expected)
print("specs", mapped[0][0])
"""


@pytest.mark.parametrize(("kv_heads", "heads_spec"), [(2, "'model'"), (1, "None")])
def test_splash_on_a_mesh_runs_per_device_and_matches_the_einsum_path(kv_heads, heads_spec):
    """Rows over (data, fsdp) and, when the kv heads divide, heads over model; MQA's one kv
    head stays whole on every device."""
    import os
    import subprocess
    import sys

    script = SPLASH_ON_A_MESH.format(tests=os.path.dirname(__file__), kv=kv_heads)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    specs = done.stdout.strip().splitlines()[-1]
    assert specs == f"specs P(('data', 'fsdp'), None, {heads_spec}, None)", specs
