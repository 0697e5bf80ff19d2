"""Random ``transformers`` Llamas for benchmarks: one with the same weights in our decoder, and
a tiny one saved as a Hugging Face folder with a Llama-style tokenizer."""

from __future__ import annotations

import pathlib
import tempfile
from typing import Any

import torch
import transformers

from polyglot_jax.models import DecoderConfig, hf
from polyglot_jax.testing import tokenizers


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


def tiny_llama(
    folder: pathlib.Path, max_positions: int = 256, scale: float | None = None
) -> pathlib.Path:
    """A random 2-layer Llama and a Llama-style tokenizer (BOS 1, EOS 2) saved in ``folder``.

    Args:
      folder: where the model and tokenizer files go.
      max_positions: the model's context.
      scale: every weight drawn from N(0, scale) instead of the default init (a sharper
        model, whose choices a small perturbation can change); None keeps the default.
    """
    tokenizers.llama_style_sentencepiece(folder)
    config = transformers.LlamaConfig(
        vocab_size=1000,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    if scale is not None:
        with torch.no_grad():
            for param in model.parameters():
                param.copy_(torch.randn_like(param) * scale)
    model.save_pretrained(folder)
    return folder
