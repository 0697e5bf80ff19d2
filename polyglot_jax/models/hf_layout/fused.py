"""Families that store query, key and value as one fused ``query_key_value`` matrix."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.hf_layout.base import Getter, Layout, Path


class FusedLayout(Layout):
    """Falcon, BLOOM and GPT-NeoX: one fused query_key_value matrix per layer."""

    qkv = ""

    def group_shape(self, cfg: DecoderConfig) -> tuple[int, int]:
        """``(groups, slots)``: the fused rows are ``[groups, slots, head_dim]``."""
        return cfg.num_heads, 3

    def _slots(self, cfg: DecoderConfig) -> tuple[slice, slice, slice]:
        _, slots = self.group_shape(cfg)
        if slots == 3:
            return slice(0, 1), slice(1, 2), slice(2, 3)
        return slice(0, slots - 2), slice(slots - 2, slots - 1), slice(slots - 1, slots)

    def split_qkv(
        self, get: Getter, i: int, cfg: DecoderConfig
    ) -> Iterator[tuple[Path, np.ndarray]]:
        base = self.layer.format(i=i)
        groups, slots = self.group_shape(cfg)
        d, e = cfg.head_dim, cfg.embed_dim
        w = get(f"{base}.{self.qkv}.weight").reshape(groups, slots, d, e)
        b = get(f"{base}.{self.qkv}.bias").reshape(groups, slots, d) if cfg.qkv_bias else None
        for proj, sl in zip(("q_proj", "k_proj", "v_proj"), self._slots(cfg), strict=True):
            part = w[:, sl].reshape(-1, d, e)  # [heads, head_dim, embed]
            yield (proj, "kernel"), np.ascontiguousarray(part.transpose(2, 0, 1))
            if b is not None:
                yield (proj, "bias"), b[:, sl].reshape(-1, d)

    def fuse_qkv(
        self, param: Callable, i: int, cfg: DecoderConfig
    ) -> Iterator[tuple[str, np.ndarray]]:
        layer = f"layers_{i}"
        groups, _ = self.group_shape(cfg)
        parts = []
        biases = []
        for proj in ("q_proj", "k_proj", "v_proj"):
            kernel = param(layer, "attention", proj, "kernel")  # [embed, heads, head_dim]
            parts.append(kernel.transpose(1, 2, 0).reshape(groups, -1, cfg.head_dim, cfg.embed_dim))
            if cfg.qkv_bias:
                biases.append(
                    param(layer, "attention", proj, "bias").reshape(groups, -1, cfg.head_dim)
                )
        yield f"{self.qkv}.weight", np.concatenate(parts, axis=1).reshape(-1, cfg.embed_dim)
        if cfg.qkv_bias:
            yield f"{self.qkv}.bias", np.concatenate(biases, axis=1).reshape(-1)
