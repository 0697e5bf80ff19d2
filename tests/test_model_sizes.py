"""Every model gin file builds, by shape only, a model of its published size (within 1%), and
is the architecture that its Hugging Face ``config.json`` describes."""

import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from polyglot_jax import gin_utils
from polyglot_jax.errors import ConfigError
from polyglot_jax.models import Decoder, DecoderConfig, hf

PUBLISHED = {  # parameters of the released checkpoints
    "llama2_7b": 6_738_415_616,
    "llama2_13b": 13_015_864_320,
    "llama2_70b": 68_976_648_192,
    "llama1_7b": 6_738_415_616,
    "llama1_13b": 13_015_864_320,
    "open_llama_3b": 3_426_473_600,
    "open_llama_7b": 6_738_415_616,
    "open_llama_13b": 13_015_864_320,
    "llama3_8b": 8_030_261_248,
    "mistral_7b": 7_241_732_096,
    "qwen2_7b": 7_615_616_512,
    "falcon_7b": 6_921_720_704,
    "bloom_560m": 559_214_592,
    "bloom_1b1": 1_065_314_304,
    "bloom_1b7": 1_722_408_960,
    "bloom_3b": 3_002_557_440,
    "bloom_7b1": 7_069_016_064,
    "pythia_70m": 70_426_624,
    "pythia_160m": 162_322_944,
    "pythia_410m": 405_334_016,
    "pythia_1b": 1_011_781_632,
    "pythia_1_4b": 1_414_647_808,
    "pythia_2_8b": 2_775_208_960,
    "pythia_6_9b": 6_857_302_016,
    "pythia_12b": 11_846_072_320,
    "palm_style_1b": 1_000_000_000,  # a 1B-class design, no release to match
}
MODELS = pathlib.Path(gin_utils.default_search_paths()[1]) / "models"


def config_of(name: str) -> DecoderConfig:
    gin_utils.configure(gin_utils.GinArgs(files=[f"models/{name}.gin"]))
    return DecoderConfig()  # fields bound by the gin file


def test_every_size_file_is_listed():
    sizes = {p.stem for p in MODELS.glob("*.gin")} - {"tiny"}
    sizes = {s for s in sizes if not s.endswith("_base")}
    assert sizes == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_the_published_size(name):
    cfg = config_of(name)
    shapes = jax.eval_shape(
        lambda: Decoder(cfg).init(jax.random.PRNGKey(0), jnp.ones((1, 8), jnp.int32))
    )
    count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))
    tolerance = 0.15 if name == "palm_style_1b" else 0.01
    assert abs(count - PUBLISHED[name]) / PUBLISHED[name] <= tolerance, count


def _bloom(hidden: int, layers: int, heads: int, **extra: object) -> dict:
    """A bigscience/bloom-* config.json as released, Megatron-DeepSpeed switches included."""
    return {
        "apply_residual_connection_post_layernorm": False,
        "architectures": ["BloomForCausalLM"],
        "attention_dropout": 0.0,
        "attention_softmax_in_fp32": True,
        "bias_dropout_fusion": True,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_dropout": 0.0,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "layer_norm_epsilon": 1e-05,
        "masked_softmax_fusion": True,
        "model_type": "bloom",
        "n_head": heads,
        "n_inner": None,
        "n_layer": layers,
        "offset_alibi": 100,
        "pad_token_id": 3,
        "pretraining_tp": 1,
        "skip_bias_add": True,
        "skip_bias_add_qkv": False,
        "slow_but_exact": False,
        "unk_token_id": 0,
        "use_cache": True,
        "vocab_size": 250880,
        **extra,
    }


def _llama1(hidden: int, layers: int, heads: int, mlp: int, decapoda: bool = False) -> dict:
    """A LLaMA-1-architecture config.json: OpenLLaMA's, or the early conversion's (decapoda)."""
    config = {
        "architectures": ["LLaMAForCausalLM" if decapoda else "LlamaForCausalLM"],
        "bos_token_id": 0 if decapoda else 1,
        "eos_token_id": 1 if decapoda else 2,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": mlp,
        "model_type": "llama",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "pad_token_id": -1 if decapoda else 0,
        "rms_norm_eps": 1e-06,
        "torch_dtype": "float16",
        "use_cache": True,
        "vocab_size": 32000,
    }
    if decapoda:
        return {**config, "max_sequence_length": 2048, "transformers_version": "4.27.0.dev0"}
    return {**config, "max_position_embeddings": 2048, "tie_word_embeddings": False}


HF_CONFIGS = {  # the published config.json values of each size (cited in its gin file)
    "bloom_560m": _bloom(1024, 24, 16),
    "bloom_1b1": _bloom(1536, 24, 16),
    "bloom_1b7": _bloom(2048, 24, 16, pretraining_tp=2, seq_length=4096),
    "bloom_3b": _bloom(2560, 30, 32, pretraining_tp=4),
    "bloom_7b1": _bloom(4096, 30, 32),
    "llama1_7b": _llama1(4096, 32, 32, 11008, decapoda=True),
    "llama1_13b": _llama1(5120, 40, 40, 13824, decapoda=True),
    "open_llama_3b": _llama1(3200, 26, 32, 8640),
    "open_llama_7b": _llama1(4096, 32, 32, 11008),
    "open_llama_13b": _llama1(5120, 40, 40, 13824),
}
RUN_FIELDS = ("dtype", "param_dtype", "scan_layers", "remat", "lora")  # how, not what, to run


@pytest.mark.parametrize("name", sorted(HF_CONFIGS))
def test_size_file_is_the_architecture_of_its_config_json(name, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(HF_CONFIGS[name]))
    published = json.loads(path.read_text())
    from_hf = hf.config_from_hf(published, str(path))
    ours = config_of(name)
    positions = published.get("max_position_embeddings", published.get("max_sequence_length"))
    expected = dataclasses.replace(
        from_hf,
        max_length=positions or 2048,  # BLOOM (ALiBi) names none; it was trained at 2048
        **{field: getattr(ours, field) for field in RUN_FIELDS},
    )
    assert ours == expected


def test_a_bloom_mlp_other_than_four_times_hidden_is_refused():
    assert hf.config_from_hf(_bloom(64, 2, 4, n_inner=256)).mlp_dim == 256
    with pytest.raises(hf.UnsupportedConfigError, match="n_inner=100"):
        hf.config_from_hf(_bloom(64, 2, 4, n_inner=100))


def test_falcon_7b_config_with_its_native_auto_map_loads():
    # tiiuae/falcon-7b's config.json (model_type falcon) keeps auto_map to its own
    # configuration_falcon / modeling_falcon modules: the model transformers ships natively.
    config = {
        "model_type": "falcon",
        "architectures": ["FalconForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_falcon.FalconConfig",
            "AutoModel": "modeling_falcon.FalconModel",
            "AutoModelForCausalLM": "modeling_falcon.FalconForCausalLM",
        },
        "vocab_size": 65024,
        "hidden_size": 4544,
        "num_hidden_layers": 32,
        "num_attention_heads": 71,
        "multi_query": True,
        "parallel_attn": True,
        "new_decoder_architecture": False,
        "bias": False,
        "alibi": False,
        "layer_norm_epsilon": 1e-5,
        "bos_token_id": 11,
        "eos_token_id": 11,
    }
    cfg = hf.config_from_hf(config)
    assert (cfg.family, cfg.num_layers, cfg.num_heads, cfg.num_kv_heads) == ("falcon", 32, 71, 1)
    custom = {**config, "auto_map": {"AutoModelForCausalLM": "modeling_RW.RWForCausalLM"}}
    with pytest.raises(ConfigError, match="auto_map points to custom modelling code"):
        hf.config_from_hf(custom)
