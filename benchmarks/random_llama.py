"""A random ``transformers`` Llama and the same weights in our decoder, for benchmarks."""

from __future__ import annotations

import pathlib
import tempfile
from typing import Any

import torch
import transformers

from polyglot_jax.models import DecoderConfig, hf


def random_llama(
    layers: int, hidden: int, max_positions: int, vocab_size: int = 32000
) -> tuple[transformers.LlamaForCausalLM, DecoderConfig, Any]:
    """``(torch model, our config, our params)``: 64-dim heads, SwiGLU width 8/3 x hidden."""
    config = transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=hidden * 8 // 3 // 64 * 64,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64,
        max_position_embeddings=max_positions,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    reference = transformers.LlamaForCausalLM(config)
    with tempfile.TemporaryDirectory() as tmp:
        reference.save_pretrained(pathlib.Path(tmp))
        cfg, params = hf.load_model_dir(tmp)
    return reference, cfg, params
