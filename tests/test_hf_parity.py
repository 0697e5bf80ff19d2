"""Parity with Hugging Face ``transformers`` on tiny random models of every supported family.

Each test builds a random model with ``transformers``, saves it as safetensors, loads it into our
decoder and compares float32 logits (max abs diff <= 1e-4): a right-padded batch, one KV-cache
decode step, and the export back to a directory that ``from_pretrained`` loads, with the layers
unrolled and scanned (stacked parameters and cache).
"""

import numpy as np
import pytest
import torch
import transformers

from polyglot_jax.errors import CheckpointError
from polyglot_jax.models import hf, init_cache
from polyglot_jax.models.decoder import Decoder

TOL = 1e-4
VOCAB = 97

FAMILIES = {
    "llama": ("LlamaConfig", dict(num_key_value_heads=2, rope_theta=500.0)),
    "llama_biases": (
        "LlamaConfig",
        dict(num_key_value_heads=4, attention_bias=True, mlp_bias=True),
    ),
    "llama3_tied": (
        "LlamaConfig",
        dict(
            num_key_value_heads=1,
            tie_word_embeddings=True,
            max_position_embeddings=64,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16,
            },
        ),
    ),
    "mistral_window": ("MistralConfig", dict(num_key_value_heads=2, sliding_window=4)),
    "qwen2": ("Qwen2Config", dict(num_key_value_heads=2)),
    "falcon_7b_layout": (
        "FalconConfig",
        dict(multi_query=True, parallel_attn=True, bias=False, new_decoder_architecture=False),
    ),
    "falcon_new_layout": (
        "FalconConfig",
        dict(new_decoder_architecture=True, num_kv_heads=2, bias=True),
    ),
    "falcon_sequential": (
        "FalconConfig",
        dict(multi_query=False, parallel_attn=False, bias=True, new_decoder_architecture=False),
    ),
    "bloom": ("BloomConfig", dict(n_layer=2, n_head=4)),
    "gpt_neox": ("GPTNeoXConfig", dict(rotary_pct=0.25, use_parallel_residual=True)),
    "gpt_neox_sequential": ("GPTNeoXConfig", dict(rotary_pct=0.5, use_parallel_residual=False)),
}

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
)


def make_hf_model(name: str, tmp_path):
    config_cls, extra = FAMILIES[name]
    kwargs = {**COMMON, **extra}
    if config_cls == "BloomConfig":
        kwargs = {
            k: v
            for k, v in kwargs.items()
            if k not in ("num_hidden_layers", "num_attention_heads", "intermediate_size")
        }
    if config_cls == "FalconConfig":
        kwargs.pop("intermediate_size")
        kwargs["ffn_hidden_size"] = 64
    config = getattr(transformers, config_cls)(**kwargs)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    with torch.no_grad():  # randomise everything, biases and norms included
        for param in model.parameters():
            param.copy_(torch.randn_like(param) * 0.2)
    model.eval()
    path = tmp_path / name
    model.save_pretrained(path, safe_serialization=True)
    return model, path


def hf_logits(model, ids, mask=None):
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(ids), attention_mask=None if mask is None else torch.tensor(mask)
        )
    return out.logits.float().numpy()


@pytest.fixture(scope="module")
def batch():
    rng = np.random.RandomState(0)
    ids = rng.randint(0, VOCAB, (2, 10))
    mask = np.ones((2, 10), np.int64)
    mask[1, 6:] = 0
    return ids, mask


@pytest.mark.parametrize("scan", [False, True], ids=["unrolled", "scanned"])
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_logits_match_transformers(name, scan, tmp_path, batch):
    model, path = make_hf_model(name, tmp_path)
    cfg, params = hf.load_model_dir(path, scan_layers=scan)
    assert ("layers" in params) == scan
    ours = Decoder(cfg)
    ids, mask = batch
    expected = hf_logits(model, ids, mask)
    got, _ = ours.apply({"params": params}, ids, None, mask)
    valid = mask.astype(bool)
    assert np.abs(np.asarray(got)[valid] - expected[valid]).max() <= TOL

    # One KV-cache decode step after a prefill of 9 tokens equals the full forward pass.
    cache = init_cache(cfg, 2, 16)
    _, cache = ours.apply({"params": params}, ids[:, :9], cache=cache)
    step, _ = ours.apply({"params": params}, ids[:, 9:], np.full((2, 1), 9), cache=cache)
    full = hf_logits(model, ids)
    assert np.abs(np.asarray(step)[:, 0] - full[:, 9]).max() <= TOL

    # Export back: transformers loads it and gives the original logits.
    out_dir = hf.export(params, cfg, tmp_path / f"{name}_export")
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(
        out_dir, attn_implementation="eager"
    )
    assert np.abs(hf_logits(reloaded.eval(), ids) - full).max() <= TOL


def test_unsupported_config_fields_are_errors(tmp_path):
    model, _ = make_hf_model("llama", tmp_path)
    config = dict(model.config.to_diff_dict())
    with pytest.raises(hf.UnsupportedConfigError, match="unsupported field"):
        hf.config_from_hf({**config, "some_new_switch": True})
    with pytest.raises(hf.UnsupportedConfigError, match="hidden_act='gelu'"):
        hf.config_from_hf({**config, "hidden_act": "gelu"})
    with pytest.raises(hf.UnsupportedConfigError, match="rope scaling type 'yarn'"):
        hf.config_from_hf({**config, "rope_scaling": {"rope_type": "yarn", "factor": 2.0}})
    with pytest.raises(hf.UnsupportedConfigError, match="model_type 'gpt2'"):
        hf.config_from_hf({"model_type": "gpt2"})
    falcon = dict(make_hf_model("falcon_7b_layout", tmp_path / "falcon")[0].config.to_dict())
    assert hf.config_from_hf(falcon).num_kv_heads == 1  # multi-query
    with pytest.raises(hf.UnsupportedConfigError, match="num_key_value_heads 4 disagrees"):
        hf.config_from_hf({**falcon, "num_key_value_heads": 4})


def test_pickle_checkpoints_are_refused(tmp_path):
    model, _ = make_hf_model("llama", tmp_path)
    path = tmp_path / "pickled"
    path.mkdir()
    model.config.to_json_file(path / "config.json")
    torch.save(model.state_dict(), path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pickle checkpoints"):
        hf.load_model_dir(path)
    cfg, params = hf.load_model_dir(path, allow_pickle=True)
    ids = np.arange(8)[None] % VOCAB
    got, _ = Decoder(cfg).apply({"params": params}, ids)
    assert np.abs(np.asarray(got) - hf_logits(model, ids)).max() <= TOL


def test_sharded_checkpoint_is_read_through_its_index(tmp_path, batch):
    model, _ = make_hf_model("qwen2", tmp_path)
    path = tmp_path / "sharded"
    model.save_pretrained(path, max_shard_size="20KB")
    assert (path / "model.safetensors.index.json").exists()
    assert len(list(path.glob("model-*.safetensors"))) > 2
    cfg, params = hf.load_model_dir(path)
    ids, _ = batch
    got, _ = Decoder(cfg).apply({"params": params}, ids)
    assert np.abs(np.asarray(got) - hf_logits(model, ids)).max() <= TOL
