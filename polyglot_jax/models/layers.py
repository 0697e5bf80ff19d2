"""Building blocks with logical axis names: the norm and the (LoRA-capable) linear projection.

Every parameter and activation carries logical axis names (``vocab, embed, mlp, heads, kv_heads,
kv`` for parameters; ``batch, length, act_*`` for activations) that ``partitioning`` maps to
mesh axes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from polyglot_jax.models.config import LoRAConfig

Array = jax.Array

KERNEL_INIT = nn.initializers.normal(stddev=0.02)


def module_path(scope_path: Sequence[str]) -> str:
    """The layer-free path of a projection: its module group and name (``attention/q_proj``),
    the same whether the layers are scanned or unrolled (LoRA targets match it)."""
    return "/".join(str(p) for p in scope_path[-2:])


def partitioned(init: Any, axes: tuple[str, ...]) -> Any:
    """``init`` whose parameter is annotated with the logical ``axes`` of its dimensions."""
    return nn.with_logical_partitioning(init, axes)


def constrain(x: Array, axes: tuple[str, ...]) -> Array:
    """``x`` constrained to the sharding of its logical ``axes`` (one name per dimension)."""
    return nn.with_logical_constraint(x, axes)


class Norm(nn.Module):
    """RMSNorm (scale only) or LayerNorm (scale and bias), computed in float32."""

    kind: str
    eps: float
    dtype: Any
    param_dtype: Any

    @nn.compact
    def __call__(self, x: Array) -> Array:  # [..., embed]
        dim = x.shape[-1]
        scale = self.param(
            "scale", partitioned(nn.initializers.ones, ("embed",)), (dim,), self.param_dtype
        )
        x32 = x.astype(jnp.float32)
        if self.kind == "layernorm":
            x32 = x32 - jnp.mean(x32, axis=-1, keepdims=True)
        normed = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        normed = normed * scale.astype(jnp.float32)
        if self.kind == "layernorm":
            bias = self.param(
                "bias", partitioned(nn.initializers.zeros, ("embed",)), (dim,), self.param_dtype
            )
            normed = normed + bias.astype(jnp.float32)
        return normed.astype(self.dtype)


class Projection(nn.Module):
    """A linear map written as one einsum over a kernel with logical axes, with optional LoRA.

    Attributes:
      shape: kernel shape, e.g. ``(embed, heads, head_dim)``.
      axes: logical axis name of each kernel dimension.
      equation: einsum of input and kernel, e.g. ``"bte,ehd->bthd"``.
      num_in: how many leading kernel dimensions are contracted with the input.
      dtype: compute dtype.
      param_dtype: storage dtype.
      use_bias: add a bias over the output dimensions.
      lora: adapters, applied when this module's path matches one of its targets.
      quantized: the kernel is quantized by qwix (``DecoderConfig.weight_quantization``): it
        reaches the einsum as it is, in its own shape (qwix maps it to the parameter).
    """

    shape: tuple[int, ...]
    axes: tuple[str, ...]
    equation: str
    num_in: int
    dtype: Any
    param_dtype: Any
    use_bias: bool = False
    lora: LoRAConfig | None = None
    deterministic: bool = True
    quantized: bool = False

    def _equation_parts(self) -> tuple[str, str, str]:
        """``(input, kernel, output)`` subscripts of :attr:`equation`."""
        ins, rest = self.equation.split(",")
        kernel_in, out = rest.split("->")
        return ins, kernel_in, out

    def lora_active(self) -> bool:
        """Whether this module's path matches one of the LoRA targets."""
        if self.lora is None:
            return False
        path = module_path(self.scope.path)
        return any(re.search(t, path) for t in self.lora.targets)

    @nn.compact
    def __call__(self, x: Array, lora_down: Array | None = None) -> Array:
        """``x`` [..., *in] → [..., *out].

        ``lora_down`` [..., rank] is an adapter's down-projection shared with other projections
        (a fused q/k/v adapter); this projection then adds only its own ``lora_b`` lift of it.
        """
        kernel = self.param(
            "kernel", partitioned(KERNEL_INIT, self.axes), self.shape, self.param_dtype
        )
        if self.quantized:  # int8 kernels (runtime/quantization.py): qwix's einsum reads them
            y = jnp.einsum(self.equation, x.astype(self.dtype), kernel)
            return self._finish(y, x, lora_down)
        equation, inputs, weights = self.equation, x, kernel
        if self.num_in > 1:
            # Contract the flattened input dims in one 2-D dot: left as several dims, XLA may
            # transpose the whole kernel to match the activation's layout on every call.
            ins, kernel_in, out = self._equation_parts()
            equation = f"{ins[: -self.num_in]}z,z{kernel_in[self.num_in :]}->{out}"
            inputs = x.reshape(*x.shape[: -self.num_in], -1)
            weights = kernel.reshape(-1, *self.shape[self.num_in :])
        y = jnp.einsum(equation, inputs.astype(self.dtype), weights.astype(self.dtype))
        return self._finish(y, x, lora_down)

    def _finish(self, y: Array, x: Array, lora_down: Array | None) -> Array:
        """``y`` with the bias and the adapters' lift added."""
        if self.use_bias:
            out_shape, out_axes = self.shape[self.num_in :], self.axes[self.num_in :]
            bias = self.param(
                "bias", partitioned(nn.initializers.zeros, out_axes), out_shape, self.param_dtype
            )
            y = y + bias.astype(self.dtype)
        if lora_down is not None:
            y = y + self._lora_up(lora_down)
        elif self.lora_active():
            y = y + self._lora(x)
        return y

    def _lora(self, x: Array) -> Array:
        r = self.lora.rank
        in_shape, in_axes = self.shape[: self.num_in], self.axes[: self.num_in]
        a = self.param(
            "lora_a",
            partitioned(
                nn.initializers.he_uniform(in_axis=tuple(range(self.num_in)), out_axis=-1),
                (*in_axes, None),
            ),
            (*in_shape, r),
            self.param_dtype,
        )
        x = nn.Dropout(self.lora.dropout)(x, deterministic=self.deterministic)
        ins, kernel_in, _ = self._equation_parts()
        down = jnp.einsum(
            f"{ins},{kernel_in[: self.num_in]}r->{ins[: -self.num_in]}r",
            x.astype(self.dtype),
            a.astype(self.dtype),
        )
        return self._lora_up(down)

    def _lora_up(self, down: Array) -> Array:
        """``down @ B * scale``: [..., rank] → [..., *out], B [rank, *out] zero-initialised."""
        out_shape, out_axes = self.shape[self.num_in :], self.axes[self.num_in :]
        b = self.param(
            "lora_b",
            partitioned(nn.initializers.zeros, (None, *out_axes)),
            (self.lora.rank, *out_shape),
            self.param_dtype,
        )
        ins, kernel_in, out = self._equation_parts()
        up = jnp.einsum(
            f"{ins[: -self.num_in]}r,r{kernel_in[self.num_in :]}->{out}",
            down.astype(self.dtype),
            b.astype(self.dtype),
        )
        return up * self.lora.scale
