"""Per-layer parity with Hugging Face ``transformers``: which layer of which family disagrees.

The whole-model tests (``test_hf_parity.py``) say that a family's logits differ; these say where.
For every family they cover, layer 0 of the same tiny random ``transformers`` model and the
matching Flax submodule, with the weights converted by :mod:`polyglot_jax.models.hf`, get the same
random float32 hidden states, and their outputs must agree within the same tolerance (max abs
diff <= ``TOL``): every norm, the positional encoding (the rotary rotation or the ALiBi bias),
the attention block (grouped/multi-query, sliding window, fused qkv layouts), the MLP and the
whole decoder block.

A Hugging Face submodule is called with the other inputs (mask, rotary cos/sin, ALiBi) that the
full model gave it in one forward pass over a right-padded batch, captured by a hook; outputs
that depend on the mask are compared at real (non-padding) tokens only.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from test_hf_parity import FAMILIES, TOL, make_hf_model
from transformers.models.bloom.modeling_bloom import _get_alibi_slopes

from polyglot_jax.models import hf
from polyglot_jax.models.attention import (
    Attention,
    alibi_slopes,
    attention_mask,
    rope_frequencies,
    rotary_embedding,
)
from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.decoder import MLP, Block
from polyglot_jax.models.layers import Norm

BATCH, LENGTH = 2, 10
PAD = np.ones((BATCH, LENGTH), np.int64)
PAD[1, 6:] = 0  # right padding, as in the whole-model tests
VALID = PAD.astype(bool)


@dataclasses.dataclass
class Pair:
    """One family's tiny model on both sides, and what its layer 0 was called with.

    Attributes:
      model: the ``transformers`` model.
      cfg: our config for it.
      params: our converted parameters (unrolled layers).
      layer: the Hugging Face module of layer 0.
      attention: the attention module of layer 0.
      norms: our parameter path of each norm → the Hugging Face module path.
      calls: the ``(args, kwargs)`` that ``layer`` and ``attention`` got in a full forward pass.
    """

    model: Any
    cfg: DecoderConfig
    params: dict
    layer: torch.nn.Module
    attention: torch.nn.Module
    norms: dict[tuple[str, ...], str]
    calls: dict[str, tuple[tuple, dict]]


def hf_structure(model: Any) -> tuple[str, str, dict[tuple[str, ...], str]]:
    """``(layer 0 path, attention name, norms)`` of a Hugging Face model, read from its modules.

    Written down here rather than taken from ``hf_layout``, so a wrong mapping there fails.
    """
    kind = model.config.model_type
    if kind in ("llama", "mistral", "qwen2"):
        layer, attention, final = "model.layers.0", "self_attn", "model.norm"
    elif kind in ("falcon", "bloom"):
        layer, attention, final = "transformer.h.0", "self_attention", "transformer.ln_f"
    elif kind == "gpt_neox":
        layer, attention, final = "gpt_neox.layers.0", "attention", "gpt_neox.final_layer_norm"
    else:
        raise AssertionError(f"no per-layer parity mapping for model_type {kind!r}")
    module = model.get_submodule(layer)
    if hasattr(module, "ln_attn"):  # Falcon's new decoder layout: one norm per branch
        names = {"input_norm": "ln_attn", "post_attention_norm": "ln_mlp"}
    else:
        names = {"input_norm": "input_layernorm", "post_attention_norm": "post_attention_layernorm"}
    norms = {
        ("layers_0", ours): f"{layer}.{theirs}"
        for ours, theirs in names.items()
        if hasattr(module, theirs)
    }
    norms[("final_norm",)] = final
    if kind == "bloom":
        norms[("embed_norm",)] = "transformer.word_embeddings_layernorm"
    return layer, attention, norms


def capture_calls(model: Any, modules: dict[str, torch.nn.Module]) -> dict[str, tuple]:
    """The ``(args, kwargs)`` each of ``modules`` gets in a forward pass over a padded batch."""
    calls: dict[str, tuple] = {}

    def keep(name: str, _module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        calls.setdefault(name, (args, kwargs))

    hooks = [
        m.register_forward_pre_hook(functools.partial(keep, n), with_kwargs=True)
        for n, m in modules.items()
    ]
    ids = np.random.RandomState(0).randint(0, model.config.vocab_size, (BATCH, LENGTH))
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(PAD), use_cache=False)
    finally:
        for hook in hooks:
            hook.remove()
    return calls


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Pair:
    """Each family of the whole-model tests, built once for all the layer tests."""
    model, path = make_hf_model(request.param, tmp_path_factory.mktemp(request.param))
    cfg, params = hf.load_model_dir(path)
    layer_path, attention_name, norms = hf_structure(model)
    layer = model.get_submodule(layer_path)
    attention = layer.get_submodule(attention_name)
    calls = capture_calls(model, {"layer": layer, "attention": attention})
    return Pair(model, cfg, params, layer, attention, norms, calls)


def hidden_states(cfg: DecoderConfig, seed: int) -> np.ndarray:
    """Random float32 hidden states [batch, length, embed]."""
    return np.random.RandomState(seed).randn(BATCH, LENGTH, cfg.embed_dim).astype(np.float32)


def run_hf(module: torch.nn.Module, x: np.ndarray, call: tuple[tuple, dict] | None = None) -> Any:
    """``module``'s output for hidden states ``x``, its other inputs those of ``call``.

    BLOOM's attention and MLP add a ``residual`` argument to their output; it is zero here, so
    the submodule's own output is compared.
    """
    args, kwargs = call if call is not None else ((), {})
    bound = inspect.signature(module.forward).bind_partial(*args, **kwargs)
    first = next(iter(bound.signature.parameters))
    bound.arguments[first] = torch.from_numpy(x)
    if "residual" in bound.signature.parameters:
        bound.arguments["residual"] = torch.zeros(x.shape)
    with torch.no_grad():
        out = module(*bound.args, **bound.kwargs)
    return (out[0] if isinstance(out, tuple) else out).numpy()


def masks(cfg: DecoderConfig) -> tuple[np.ndarray, jnp.ndarray, jnp.ndarray]:
    """``(positions, mask, key_positions)`` of the padded batch, as :class:`Decoder` makes them."""
    positions = np.broadcast_to(np.arange(LENGTH), (BATCH, LENGTH))
    mask, key_positions = attention_mask(
        jnp.asarray(PAD), positions, LENGTH, False, cfg.sliding_window
    )
    return positions, mask, key_positions


def assert_close(got: Any, expected: Any, where: str, only_valid: bool = True) -> None:
    """``max |got - expected| <= TOL`` over real tokens (or all of them), naming ``where``."""
    diff = np.abs(np.asarray(got, np.float32) - np.asarray(expected, np.float32))
    diff = diff[VALID] if only_valid else diff
    assert diff.max() <= TOL, f"{where}: max abs diff {diff.max():.3g} > {TOL}"


def subtree(params: dict, path: tuple[str, ...]) -> dict:
    return functools.reduce(lambda tree, key: tree[key], path, params)


def apply(module: Callable, params: dict, *args: Any) -> Any:
    """A Flax submodule's output with its converted parameters."""
    out = module.apply({"params": params}, *args)
    return out[0] if isinstance(out, tuple) else out


def test_every_norm_is_mapped(pair: Pair) -> None:
    """The norms below cover every norm parameter we load (none goes untested)."""
    ours = {k for k in pair.params["layers_0"] if k.endswith("_norm")}
    ours = {("layers_0", k) for k in ours} | {(k,) for k in pair.params if k.endswith("_norm")}
    assert ours == set(pair.norms)


def test_norms(pair: Pair) -> None:
    """RMSNorm (Llama family) or LayerNorm (Falcon, BLOOM, GPT-NeoX), each one by name."""
    cfg = pair.cfg
    norm = Norm(cfg.norm, cfg.norm_eps, cfg.compute_dtype, cfg.storage_dtype)
    x = hidden_states(cfg, 1) * 3.0 + 0.5  # a mean and scale for LayerNorm to remove
    for ours, theirs in pair.norms.items():
        expected = run_hf(pair.model.get_submodule(theirs), x)
        got = apply(norm, subtree(pair.params, ours), x)
        assert_close(got, expected, f"{'/'.join(ours)} vs {theirs}", only_valid=False)


def test_positions(pair: Pair) -> None:
    """The rotary rotation of queries and keys (partial, Llama 3 scaled), or the ALiBi bias."""
    cfg = pair.cfg
    positions, _, key_positions = masks(cfg)
    if cfg.position == "alibi":
        alibi = pair.calls["layer"][1]["alibi"].numpy().reshape(BATCH, cfg.num_heads, LENGTH)
        ours = alibi_slopes(cfg.num_heads)[None, :, None] * key_positions[:, None, :]
        got, expected = np.swapaxes(ours, 1, 2), np.swapaxes(alibi, 1, 2)  # [batch, keys, heads]
        assert_close(got, expected, "alibi bias")
        for heads in (6, 12, 24):  # not powers of two: the interleaved extra slopes
            assert_close(alibi_slopes(heads), _get_alibi_slopes(heads, "cpu"), "slopes", False)
        return
    cos, sin = pair.calls["attention"][1]["position_embeddings"]
    rng = np.random.RandomState(2)
    q = rng.randn(BATCH, LENGTH, cfg.num_heads, cfg.head_dim).astype(np.float32)
    k = rng.randn(BATCH, LENGTH, cfg.num_kv_heads, cfg.head_dim).astype(np.float32)
    rotate = sys.modules[type(pair.attention).__module__].apply_rotary_pos_emb
    with torch.no_grad():  # Hugging Face rotates [batch, heads, length, head_dim]
        hf_q, hf_k = rotate(
            torch.from_numpy(q).transpose(1, 2), torch.from_numpy(k).transpose(1, 2), cos, sin
        )
    inv_freq = rope_frequencies(cfg)
    assert_close(rotary_embedding(q, positions, inv_freq), hf_q.transpose(1, 2), "rotary q")
    assert_close(rotary_embedding(k, positions, inv_freq), hf_k.transpose(1, 2), "rotary k")


def test_attention(pair: Pair) -> None:
    """Self-attention of layer 0: qkv split, heads and groups, positions, mask, output."""
    cfg = pair.cfg
    x = hidden_states(cfg, 3)
    expected = run_hf(pair.attention, x, pair.calls["attention"])
    got = apply(Attention(cfg), pair.params["layers_0"]["attention"], x, *masks(cfg), None)
    assert_close(got, expected, f"attention ({cfg.num_heads} heads, {cfg.num_kv_heads} kv)")


def test_mlp(pair: Pair) -> None:
    """The MLP of layer 0: SwiGLU or GELU (exact or tanh), with or without biases."""
    cfg = pair.cfg
    x = hidden_states(cfg, 4)
    expected = run_hf(pair.layer.mlp, x)
    got = apply(MLP(cfg), pair.params["layers_0"]["mlp"], x)
    assert_close(got, expected, f"mlp ({cfg.activation})", only_valid=False)


def test_block(pair: Pair) -> None:
    """The whole decoder block of layer 0: norms, residuals, sequential or parallel branches."""
    cfg = pair.cfg
    x = hidden_states(cfg, 5)
    expected = run_hf(pair.layer, x, pair.calls["layer"])
    got = apply(Block(cfg), pair.params["layers_0"], x, *masks(cfg), None)
    layout = "parallel" if cfg.parallel_block else "sequential"
    assert_close(got, expected, f"decoder block ({layout})")
