"""``DecoderConfig``: the one frozen dataclass that describes every decoder this project runs.

Llama 1/2/3, OpenLLaMA, Mistral, Qwen2, Falcon (both decoder layouts), BLOOM, GPT-NeoX/Pythia and
a PaLM-style block are settings of the same fields. Model sizes are gin files
(``gin_configs/models/*.gin``) that bind them; code never branches on a model name.
"""

from __future__ import annotations

import dataclasses

import gin
import jax.numpy as jnp

from polyglot_jax.errors import ConfigError

NORMS = ("rmsnorm", "layernorm")
ACTIVATIONS = ("swiglu", "gelu", "gelu_tanh")
POSITIONS = ("rope", "alibi")
REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")
ATTENTION_IMPLS = ("auto", "xla", "cudnn", "splash")
DECODE_ATTENTIONS = ("auto", "dense", "ragged")
WEIGHT_QUANTIZATIONS = ("none", "int8")
# The dtype a model is loaded in for inference (runtime.model.inference_dtype).
INFERENCE_DTYPES = ("auto", "checkpoint", "float32", "bfloat16")
FAMILIES = ("llama", "mistral", "qwen2", "falcon", "bloom", "gpt_neox", "palm")


@gin.configurable
@dataclasses.dataclass(frozen=True)
class LoRAConfig:
    """Low-rank adapters on projections whose path matches one of ``targets``.

    Attributes:
      targets: regular expressions searched in a projection's path, e.g. ``("q_proj", "v_proj")``
        or ``("attention/.*",)``.
      rank: adapter rank ``r``.
      alpha: scale numerator; the update is ``x @ A @ B * alpha / rank``.
      dropout: dropout on the adapter's input during training.
    """

    targets: tuple[str, ...] = ("q_proj", "v_proj")
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.rank <= 0:
            raise ConfigError(f"LoRAConfig.rank must be positive, got {self.rank}")
        if not self.targets:
            raise ConfigError("LoRAConfig.targets is empty: name at least one projection")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


@gin.configurable
@dataclasses.dataclass(frozen=True)
class DecoderConfig:
    """Shape, block layout and numerics of a decoder-only transformer.

    Attributes:
      family: the checkpoint layout this config exports to (Hugging Face ``model_type``;
        ``"palm"`` has none). It never changes the computation.
      vocab_size: rows of the embedding table (may exceed the tokenizer's size).
      embed_dim: width of the residual stream.
      num_layers: decoder blocks.
      num_heads: query heads.
      num_kv_heads: key/value heads (grouped-query attention; 1 is multi-query).
      head_dim: width of one head.
      mlp_dim: hidden width of the MLP.
      norm: ``"rmsnorm"`` (no bias) or ``"layernorm"`` (with bias).
      norm_eps: normalisation epsilon.
      activation: ``"swiglu"`` (gated SiLU, three matrices), ``"gelu"`` (exact) or
        ``"gelu_tanh"`` (tanh approximation), the last two ungated with two matrices.
      position: ``"rope"`` or ``"alibi"``.
      rope_theta: RoPE base frequency.
      rotary_fraction: share of each head's dimensions that are rotated (GPT-NeoX ``rotary_pct``).
      rope_scaling_factor: Llama 3 frequency scaling factor, or None for plain RoPE.
      rope_low_freq_factor / rope_high_freq_factor / rope_original_max_length: Llama 3 scaling.
      qkv_bias: biases on the query/key/value projections.
      out_bias: bias on the attention output projection.
      mlp_bias: biases in the MLP.
      parallel_block: attention and MLP read the same input and add to the residual together
        (GPT-J, GPT-NeoX, Falcon, PaLM) instead of one after the other.
      shared_block_norm: one norm feeds both branches of a parallel block (Falcon 7B, PaLM).
      embedding_norm: a norm right after the token embedding (BLOOM).
      sliding_window: attend only to the last ``sliding_window`` positions (Mistral), or None.
      tie_embeddings: share the input embedding with the output projection.
      max_length: longest sequence the KV cache is sized for by default.
      dtype: compute dtype of activations (``"float32"`` or ``"bfloat16"``).
      param_dtype: storage dtype of parameters.
      remat: activation rematerialisation per block: ``"none"``, ``"full"`` (recompute the block
        in the backward pass), ``"dots"`` (keep matmul outputs) or ``"dots_no_batch"`` (keep
        matmul outputs without batch dimensions).
      scan_layers: run the blocks as one ``nn.scan`` over a layer body: parameters (and the KV
        cache) are stacked with a leading ``layers`` axis, and compile time and memory stop
        growing with depth.
      lora: low-rank adapters, or None for full fine-tuning.
      attention_impl: the attention kernel: ``"xla"`` (einsum scores, softmax, einsum; runs
        everywhere), ``"cudnn"`` (cuDNN flash attention, GPU), ``"splash"`` (Pallas splash
        attention, TPU) or ``"auto"`` (the fused kernel of the backend the model runs on, else
        ``"xla"``). A kernel that lacks a feature the call needs (ALiBi, the KV cache, float32
        on cuDNN) falls back to ``"xla"`` and says so once in the log.
      loss_chunk: training loss over chunks of this many vocabulary entries, never holding
        the [batch, length, vocab] float32 logits (the backward pass recomputes each chunk's);
        0 computes the loss on the whole logits.
      decode_attention: attention over the KV cache: ``"dense"`` (every cache slot scored and
        the unfilled ones masked: cost follows the cache size), ``"ragged"`` (blocks of
        ``decode_block`` keys up to the longest filled row, online softmax:
        :mod:`~polyglot_jax.models.decode_attention`) or ``"auto"`` (ragged wherever it
        applies, else dense; a fallback is logged once).
      decode_block: keys per block of the ragged path.
      weight_quantization: ``"none"`` or ``"int8"``: the projection kernels are int8 with a
        scale per output channel (a model for serving, made by
        :func:`~polyglot_jax.runtime.quantization.quantize`).
    """

    family: str = "llama"
    vocab_size: int = 1024
    embed_dim: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 32
    mlp_dim: int = 384
    norm: str = "rmsnorm"
    norm_eps: float = 1e-6
    activation: str = "swiglu"
    position: str = "rope"
    rope_theta: float = 10_000.0
    rotary_fraction: float = 1.0
    rope_scaling_factor: float | None = None
    rope_low_freq_factor: float = 1.0
    rope_high_freq_factor: float = 4.0
    rope_original_max_length: int = 8192
    qkv_bias: bool = False
    out_bias: bool = False
    mlp_bias: bool = False
    parallel_block: bool = False
    shared_block_norm: bool = False
    embedding_norm: bool = False
    sliding_window: int | None = None
    tie_embeddings: bool = False
    max_length: int = 2048
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat: str = "none"
    scan_layers: bool = False
    lora: LoRAConfig | None = None
    attention_impl: str = "auto"
    loss_chunk: int = 0
    decode_attention: str = "auto"
    decode_block: int = 128
    weight_quantization: str = "none"

    def __post_init__(self) -> None:
        for field in ("vocab_size", "embed_dim", "num_layers", "num_heads", "head_dim", "mlp_dim"):
            if getattr(self, field) <= 0:
                raise ConfigError(
                    f"DecoderConfig.{field} must be positive, got {getattr(self, field)}"
                )
        if self.num_kv_heads <= 0 or self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"DecoderConfig.num_heads ({self.num_heads}) must be a multiple of "
                f"num_kv_heads ({self.num_kv_heads})"
            )
        for field, allowed in (
            ("family", FAMILIES),
            ("norm", NORMS),
            ("activation", ACTIVATIONS),
            ("position", POSITIONS),
            ("remat", REMAT_POLICIES),
            ("attention_impl", ATTENTION_IMPLS),
            ("decode_attention", DECODE_ATTENTIONS),
            ("weight_quantization", WEIGHT_QUANTIZATIONS),
        ):
            if getattr(self, field) not in allowed:
                raise ConfigError(
                    f"DecoderConfig.{field} must be one of {allowed}, got {getattr(self, field)!r}"
                )
        if not 0.0 < self.rotary_fraction <= 1.0 or self.rotary_dim % 2:
            raise ConfigError(
                f"DecoderConfig.rotary_fraction {self.rotary_fraction} gives an odd or empty "
                f"rotary width {self.rotary_dim} for head_dim {self.head_dim}"
            )
        if not isinstance(self.loss_chunk, int) or self.loss_chunk < 0:
            raise ConfigError(f"DecoderConfig.loss_chunk must be >= 0, got {self.loss_chunk!r}")
        if not isinstance(self.decode_block, int) or self.decode_block <= 0:
            raise ConfigError(
                f"DecoderConfig.decode_block must be a positive integer, got {self.decode_block!r}"
            )
        if self.shared_block_norm and not self.parallel_block:
            raise ConfigError("DecoderConfig.shared_block_norm needs parallel_block = True")
        for field in ("dtype", "param_dtype"):
            try:
                jnp.dtype(getattr(self, field))
            except TypeError:
                raise ConfigError(
                    f"DecoderConfig.{field}: unknown dtype {getattr(self, field)!r}"
                ) from None

    @property
    def rotary_dim(self) -> int:
        """How many dimensions of each head RoPE rotates."""
        return int(self.head_dim * self.rotary_fraction)

    @property
    def compute_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.dtype)

    @property
    def storage_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.param_dtype)

    def replace(self, **changes: object) -> DecoderConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-able fields (``lora`` as a nested dict)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict) -> DecoderConfig:
        """Inverse of :meth:`to_dict`; unknown fields are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ConfigError(f"DecoderConfig: unknown field(s) {', '.join(unknown)}")
        fields = dict(fields)
        if isinstance(fields.get("lora"), dict):
            lora = dict(fields["lora"])
            lora["targets"] = tuple(lora.get("targets", ()))
            fields["lora"] = LoRAConfig(**lora)
        return cls(**fields)
