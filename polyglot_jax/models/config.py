"""``DecoderConfig``: the one frozen dataclass that describes every decoder this project runs.

Model sizes are gin files (``gin_configs/models/*.gin``) that bind its fields; code never
branches on a model name.
"""

from __future__ import annotations

import dataclasses

import gin
import jax.numpy as jnp


@gin.configurable
@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """Shape and numerics of a Llama-family decoder.

    Attributes:
      vocab_size: rows of the embedding table (may exceed the tokenizer's size).
      embed_dim: width of the residual stream.
      num_layers: decoder blocks.
      num_heads: query heads.
      num_kv_heads: key/value heads (grouped-query attention; 1 is multi-query).
      head_dim: width of one head.
      mlp_dim: hidden width of the SwiGLU MLP.
      rope_theta: RoPE base frequency.
      norm_eps: RMSNorm epsilon.
      tie_embeddings: share the input embedding with the output projection.
      max_length: longest sequence the KV cache is sized for by default.
      dtype: compute dtype of activations (``"float32"`` or ``"bfloat16"``).
      param_dtype: storage dtype of parameters.
    """

    vocab_size: int = 1024
    embed_dim: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 32
    mlp_dim: int = 384
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-6
    tie_embeddings: bool = False
    max_length: int = 2048
    dtype: str = "float32"
    param_dtype: str = "float32"

    def __post_init__(self) -> None:
        for field in ("vocab_size", "embed_dim", "num_layers", "num_heads", "head_dim", "mlp_dim"):
            if getattr(self, field) <= 0:
                raise ValueError(
                    f"DecoderConfig.{field} must be positive, got {getattr(self, field)}"
                )
        if self.num_kv_heads <= 0 or self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"DecoderConfig.num_heads ({self.num_heads}) must be a multiple of "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        if self.head_dim % 2:
            raise ValueError(f"DecoderConfig.head_dim must be even for RoPE, got {self.head_dim}")
        for field in ("dtype", "param_dtype"):
            try:
                jnp.dtype(getattr(self, field))
            except TypeError:
                raise ValueError(
                    f"DecoderConfig.{field}: unknown dtype {getattr(self, field)!r}"
                ) from None

    @property
    def compute_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.dtype)

    @property
    def storage_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.param_dtype)
