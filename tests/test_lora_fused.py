"""LoRA on the fused ``query_key_value`` of Falcon, BLOOM and GPT-NeoX.

One adapter pair per layer on the fused matrix: a shared A and the B slices of q, k and v. Its
PEFT export (target ``query_key_value``) loads with ``peft.PeftModel.from_pretrained`` on the
Hugging Face base and gives our logits (max abs diff <= 1e-4), and so does the merged model.
"""

import json

import flax.linen as nn
import jax
import numpy as np
import peft
import pytest
import safetensors.numpy
from flax import traverse_util
from test_hf_parity import VOCAB, hf_logits, make_hf_model

from polyglot_jax.errors import ConfigError
from polyglot_jax.models import Decoder, LoRAConfig, hf, lora

TOL = 1e-4
LORA = LoRAConfig(targets=("query_key_value", "o_proj", "down_proj"), rank=4, alpha=8.0)
# family case in test_hf_parity -> the attention module of layer 0 in the Hugging Face model
ATTENTION = {
    "bloom": "transformer.h.0.self_attention",
    "gpt_neox": "gpt_neox.layers.0.attention",
    "falcon_7b_layout": "transformer.h.0.self_attention",  # multi-query: [1, heads + 2, d]
    "falcon_new_layout": "transformer.h.0.self_attention",  # grouped: [kv, heads / kv + 2, d]
}


def logits(cfg, params, ids):
    return np.asarray(Decoder(cfg).apply({"params": params}, ids)[0])


def adapted(cfg, base, seed=1):
    """``cfg``'s parameters with ``base`` weights and random non-zero adapters (A and B)."""
    init = Decoder(cfg).init(jax.random.PRNGKey(0), np.zeros((1, 4), np.int32))["params"]
    flat = traverse_util.flatten_dict(lora.with_base(nn.unbox(init), base))
    rng = np.random.RandomState(seed)
    for key in flat:
        if key[-1] in lora.ADAPTER_LEAVES:
            flat[key] = rng.normal(0, 0.2, flat[key].shape).astype(np.float32)
    return traverse_util.unflatten_dict(flat)


@pytest.mark.parametrize("name", sorted(ATTENTION))
def test_fused_adapter_is_one_peft_pair_with_our_logits(name, tmp_path):
    model, path = make_hf_model(name, tmp_path)
    base_cfg, base = hf.load_model_dir(path)
    cfg = base_cfg.replace(lora=LORA)
    params = adapted(cfg, base)
    attention = traverse_util.flatten_dict(params["layers_0"]["attention"])
    assert ("query_key_value", "lora_a") in attention  # [embed, rank], shared by q, k and v
    assert all((p, "lora_a") not in attention for p in ("q_proj", "k_proj", "v_proj"))
    assert attention["k_proj", "lora_b"].shape == (4, cfg.num_kv_heads, cfg.head_dim)

    ids = np.random.RandomState(0).randint(0, VOCAB, (2, 10))
    ours = logits(cfg, params, ids)
    assert np.abs(ours - logits(base_cfg, base, ids)).max() > 100 * TOL  # adapters matter

    adapter_dir = lora.export_peft(params, cfg, tmp_path / "adapter", str(path))
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["target_modules"] == ["dense", "dense_4h_to_h", "query_key_value"]
    assert (config["r"], config["lora_alpha"]) == (4, 8.0)
    tensors = safetensors.numpy.load_file(adapter_dir / "adapter_model.safetensors")
    qkv = f"base_model.model.{ATTENTION[name]}.query_key_value"
    assert tensors[f"{qkv}.lora_A.weight"].shape == (4, cfg.embed_dim)
    rows = (cfg.num_heads + 2 * cfg.num_kv_heads) * cfg.head_dim
    assert tensors[f"{qkv}.lora_B.weight"].shape == (rows, 4)

    with_adapter = peft.PeftModel.from_pretrained(model, adapter_dir).eval()
    assert set(peft.get_peft_model_state_dict(with_adapter)) == set(tensors)
    assert np.abs(hf_logits(with_adapter, ids) - ours).max() <= TOL
    assert np.abs(logits(base_cfg, lora.merge(params, cfg), ids) - ours).max() <= TOL


def test_fused_adapter_trains_one_shared_a(tmp_path):
    _, path = make_hf_model("falcon_new_layout", tmp_path)
    base_cfg, base = hf.load_model_dir(path)
    cfg = base_cfg.replace(lora=LoRAConfig(targets=("query_key_value",), rank=2))
    trainable, frozen = lora.split(adapted(cfg, base), cfg)
    ids = np.arange(8)[None] % VOCAB

    def loss(t):
        return Decoder(cfg).apply({"params": lora.combine(t, frozen)}, ids)[0].sum()

    grads = traverse_util.flatten_dict(jax.grad(loss)(trainable))
    assert sorted(k[2:] for k in grads if k[0] == "layers_0") == [
        ("k_proj", "lora_b"),
        ("q_proj", "lora_b"),
        ("query_key_value", "lora_a"),
        ("v_proj", "lora_b"),
    ]
    assert all(np.abs(g).max() > 0 for g in grads.values())


@pytest.mark.parametrize(
    ("family", "targets", "message"),
    [
        ("llama", ("query_key_value",), "'query_key_value' names no module of a llama model"),
        ("bloom", ("q_proj", "v_proj"), "'q_proj' names no module of a bloom model"),
        ("gpt_neox", ("query_key_value", "qkv_proj"), "'qkv_proj' names no module"),
    ],
)
def test_target_the_family_lacks_is_refused(tiny_config, family, targets, message):
    cfg = tiny_config.replace(family=family, lora=LoRAConfig(targets=targets))
    with pytest.raises(ConfigError, match=message):
        Decoder(cfg).init(jax.random.PRNGKey(0), np.zeros((1, 4), np.int32))
