"""Fused attention kernels behind ``DecoderConfig.attention_impl``, and the choice between them.

``"xla"`` is :class:`~polyglot_jax.models.attention.Attention`'s own einsum path and runs
everywhere. ``"cudnn"`` is cuDNN flash attention through ``jax.nn.dot_product_attention``
(GPU); ``"splash"`` is the Pallas splash attention kernel (TPU). ``"auto"`` takes the fused
kernel of the backend the model is traced for, and ``"xla"`` on CPU. A fused kernel that lacks
something the call needs falls back to ``"xla"``, and the reason is logged once per process.
Under a multi-device mesh splash runs in ``shard_map``: each device attends over its own rows
(the logical ``batch`` axis) and, where the kv heads divide evenly, its own heads
(``act_heads``); the sequence is whole on every device.

Both kernels see the same mask as the einsum path: causal by index, within a packed segment
(segment ids, 0 = padding), and for Mistral a window of ``sliding_window`` tokens. The window
is counted in indices, which equals the einsum path's count in positions because positions
rise by one per token within a segment (packing and the decoder make them so).

Attention over a KV cache is chosen apart, by ``DecoderConfig.decode_attention``
(:func:`select_decode`): the dense einsum path or the ragged path of
:mod:`~polyglot_jax.models.decode_attention`, which reads the cache only up to the longest
filled row. ``"auto"`` takes the ragged path on every backend wherever it applies.
"""

from __future__ import annotations

import functools
import logging
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

from polyglot_jax.models.config import DecoderConfig

Array = jax.Array
log = logging.getLogger(__name__)
BACKEND_KERNEL = {"gpu": "cudnn", "cuda": "cudnn", "tpu": "splash"}
SPLASH_BLOCK = 128  # splash tiles the sequence in blocks of a multiple of 128
_LOGGED: set[tuple[str, str]] = set()


def fallback_reason(
    impl: str, cfg: DecoderConfig, backend: str, cached: bool, length: int, structured: bool
) -> str | None:
    """Why ``impl`` cannot run this call (then ``"xla"`` does), or None when it can."""
    if impl == "xla":
        return None
    if BACKEND_KERNEL.get(backend) != impl:
        return f"the {backend} backend has no {impl} kernel"
    if cfg.position == "alibi":
        return "ALiBi position biases"
    if cached:
        return "decoding with a KV cache"
    if not structured:
        return "a dense mask without segment ids"
    if impl == "cudnn":
        if cfg.compute_dtype not in (jnp.bfloat16, jnp.float16):
            return f"cuDNN flash attention needs bfloat16 or float16, not {cfg.dtype}"
        if cfg.head_dim > 256 or cfg.head_dim % 8:
            return f"cuDNN flash attention needs head_dim <= 256, a multiple of 8: {cfg.head_dim}"
    if impl == "splash" and length % SPLASH_BLOCK:
        return f"splash attention needs a length that is a multiple of {SPLASH_BLOCK}: {length}"
    return None


def mesh_devices() -> int:
    """Devices of the mesh being traced under (``jax.set_mesh``), 1 outside one."""
    mesh = jax.sharding.get_abstract_mesh()
    return 1 if mesh.empty else mesh.size


def select(
    cfg: DecoderConfig,
    *,
    cached: bool,
    length: int,
    structured: bool = True,
    backend: str | None = None,
) -> str:
    """The kernel that runs this attention call: ``"xla"``, ``"cudnn"`` or ``"splash"``.

    Args:
      cfg: the model; ``cfg.attention_impl`` is the request.
      cached: the call reads and writes a KV cache (decoding).
      length: query length.
      structured: segment ids are known (not only a dense mask).
      backend: ``jax.default_backend()`` unless given.

    A fallback from a requested (or, under ``"auto"``, backend-chosen) kernel is logged once.
    """
    backend = backend or jax.default_backend()
    impl = cfg.attention_impl
    if impl == "auto":
        impl = BACKEND_KERNEL.get(backend, "xla")
    reason = fallback_reason(impl, cfg, backend, cached, length, structured)
    if reason is None:
        return impl
    if (impl, reason) not in _LOGGED:
        _LOGGED.add((impl, reason))
        log.warning("attention_impl=%s falls back to xla: %s", cfg.attention_impl, reason)
    return "xla"


def decode_fallback_reason(structured: bool) -> str | None:
    """Why the ragged cache path cannot run this call (then the dense one does), or None."""
    if not structured:
        return "a dense mask without its positions (the ragged path builds its own)"
    return None


def select_decode(cfg: DecoderConfig, *, structured: bool = True) -> str:
    """The path of an attention call that reads a KV cache: ``"dense"`` or ``"ragged"``.

    Args:
      cfg: the model; ``cfg.decode_attention`` is the request (``"auto"``: ragged wherever
        it applies, on every backend).
      structured: the call's mask is the decoder's own (an ``AttentionMask``: causal by cache
        position, with the sliding window), not an arbitrary dense mask.

    A fallback from the ragged path is logged once.
    """
    if cfg.decode_attention == "dense":
        return "dense"
    reason = decode_fallback_reason(structured)
    if reason is None:
        return "ragged"
    if ("decode", reason) not in _LOGGED:
        _LOGGED.add(("decode", reason))
        log.warning("decode_attention=%s falls back to dense: %s", cfg.decode_attention, reason)
    return "dense"


def segment_mask(segment_ids: Array | None) -> Array | None:
    """[batch, 1, length, length] bool: same segment and a real key, or None without ids."""
    if segment_ids is None:
        return None
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    return (same & (segment_ids[:, None, :] != 0))[:, None]


def dot_product_attention(
    q: Array,  # [batch, length, heads, head_dim]
    k: Array,  # [batch, length, kv_heads, head_dim]
    v: Array,  # [batch, length, kv_heads, head_dim]
    segment_ids: Array | None,  # [batch, length], 0 = padding
    sliding_window: int | None,
    implementation: str = "cudnn",
) -> Array:
    """Causal grouped-query attention by ``jax.nn.dot_product_attention``: [b, t, heads, d].

    ``implementation="cudnn"`` is the GPU flash kernel (causal blocks skipped; segment ids
    become its mask); ``"xla"`` is JAX's reference of the same call, which CPU tests compare
    with the einsum path.
    """
    window = None if sliding_window is None else (sliding_window - 1, 0)
    return jax.nn.dot_product_attention(
        q,
        k.astype(q.dtype),
        v.astype(q.dtype),
        mask=segment_mask(segment_ids),
        is_causal=True,
        local_window_size=window,
        implementation=implementation,
    )


@functools.lru_cache(maxsize=32)
def _splash_kernel(length: int, groups: int, window: int | None, interpret: bool) -> object:
    """A single-device splash MQA kernel over ``groups`` query heads sharing one kv head."""
    from jax.experimental.pallas.ops.tpu.splash_attention import (
        splash_attention_kernel as splash,
    )
    from jax.experimental.pallas.ops.tpu.splash_attention import (
        splash_attention_mask as masks,
    )

    shape = (length, length)
    one = masks.CausalMask(shape) if window is None else masks.LocalMask(shape, (window - 1, 0), 0)
    block = max(b for b in (512, 256, SPLASH_BLOCK) if length % b == 0)
    sizes = splash.BlockSizes(
        block_q=block,
        block_kv=block,
        block_kv_compute=block,
        block_q_dkv=block,
        block_kv_dkv=block,
        block_kv_dkv_compute=block,
        block_q_dq=block,
        block_kv_dq=block,
    )
    return splash.make_splash_mqa_single_device(
        masks.MultiHeadMask([one] * groups), block_sizes=sizes, interpret=interpret
    )


def splash_attention(
    q: Array,  # [batch, length, heads, head_dim]
    k: Array,  # [batch, length, kv_heads, head_dim]
    v: Array,  # [batch, length, kv_heads, head_dim]
    segment_ids: Array | None,  # [batch, length], 0 = padding
    sliding_window: int | None,
    interpret: bool = False,
) -> Array:
    """Causal grouped-query attention by the Pallas splash kernel: [b, t, heads, d].

    One MQA kernel per kv head (its ``groups`` query heads share it), mapped over batch and
    kv heads; under a multi-device mesh, per device (:func:`mesh_specs`). Padding queries
    (segment 0) attend to padding keys here and to nothing in the einsum path; their outputs
    are never read.
    """
    local = functools.partial(_splash_local, sliding_window=sliding_window, interpret=interpret)
    if mesh_devices() == 1:
        return local(q, k, v, segment_ids)
    rows, heads = mesh_specs(q.shape[2], k.shape[2])
    if segment_ids is None:
        specs, args = (heads, heads, heads), (q, k, v)
        mapped = lambda a, b, c: local(a, b, c, None)  # noqa: E731
    else:
        specs, args, mapped = (heads, heads, heads, rows), (q, k, v, segment_ids), local
    return jax.shard_map(mapped, in_specs=specs, out_specs=heads, check_vma=False)(*args)


def mesh_specs(num_heads: int, kv_heads: int) -> tuple[PartitionSpec, PartitionSpec]:
    """``(rows, heads)``: the partition specs of ``[batch, length]`` and ``[batch, length,
    heads, head_dim]`` arrays in splash's ``shard_map``, from the logical axis rules: rows
    over ``batch``'s mesh axes; heads over ``act_heads``'s when both head counts divide by
    their size (else whole on every device, gathered by XLA)."""
    batch, head = nn.logical_to_mesh_axes(("batch", "act_heads"))
    mesh = jax.sharding.get_abstract_mesh()
    names = () if head is None else (head,) if isinstance(head, str) else tuple(head)
    size = math.prod(mesh.shape[name] for name in names)
    if num_heads % size or kv_heads % size:
        head = None
    return PartitionSpec(batch, None), PartitionSpec(batch, None, head, None)


def _splash_local(
    q: Array,  # [batch, length, heads, head_dim]
    k: Array,  # [batch, length, kv_heads, head_dim]
    v: Array,  # [batch, length, kv_heads, head_dim]
    segment_ids: Array | None,  # [batch, length]
    sliding_window: int | None,
    interpret: bool,
) -> Array:
    """:func:`splash_attention` on one device's arrays."""
    from jax.experimental.pallas.ops.tpu.splash_attention import (
        splash_attention_kernel as splash,
    )

    batch, length, heads, dim = q.shape
    kv_heads = k.shape[2]
    groups = heads // kv_heads
    kernel = _splash_kernel(length, groups, sliding_window, interpret)
    scale = 1.0 / jnp.sqrt(jnp.float32(dim))
    q = (q.astype(jnp.float32) * scale).astype(q.dtype)
    # [batch, kv_heads, groups, length, head_dim] and [batch, kv_heads, length, head_dim]
    qg = q.reshape(batch, length, kv_heads, groups, dim).transpose(0, 2, 3, 1, 4)
    kt = k.astype(q.dtype).transpose(0, 2, 1, 3)
    vt = v.astype(q.dtype).transpose(0, 2, 1, 3)

    def one_row(qr: Array, kr: Array, vr: Array, seg: Array | None) -> Array:
        ids = None if seg is None else splash.SegmentIds(q=seg, kv=seg)
        return jax.vmap(lambda a, b, c: kernel(a, b, c, segment_ids=ids))(qr, kr, vr)

    if segment_ids is None:
        out = jax.vmap(lambda a, b, c: one_row(a, b, c, None))(qg, kt, vt)
    else:
        out = jax.vmap(one_row)(qg, kt, vt, segment_ids.astype(jnp.int32))
    # [batch, kv_heads, groups, length, head_dim] → [batch, length, heads, head_dim]
    return out.transpose(0, 3, 1, 2, 4).reshape(batch, length, heads, dim)


def fused_attention(
    impl: str,
    q: Array,  # [batch, length, heads, head_dim]
    k: Array,  # [batch, length, kv_heads, head_dim]
    v: Array,  # [batch, length, kv_heads, head_dim]
    segment_ids: Array | None,  # [batch, length]
    sliding_window: int | None,
) -> Array:
    """Attention output [batch, length, heads, head_dim] by the fused kernel ``impl``."""
    if impl == "cudnn":
        return dot_product_attention(q, k, v, segment_ids, sliding_window, "cudnn")
    if impl == "splash":
        return splash_attention(q, k, v, segment_ids, sliding_window)
    raise ValueError(f"no fused attention kernel {impl!r}")
