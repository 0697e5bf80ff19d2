"""Decoder-only language models: one configurable Flax decoder and its configuration."""

from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.decoder import Decoder, init_cache

__all__ = ["Decoder", "DecoderConfig", "init_cache"]
