"""Decoder-only language models: one configurable Flax decoder and its configuration."""

from polyglot_jax.models.config import DecoderConfig, LoRAConfig
from polyglot_jax.models.decoder import Decoder, init_cache

__all__ = ["Decoder", "DecoderConfig", "LoRAConfig", "init_cache"]
