"""Families that store query, key and value as one fused ``query_key_value`` matrix."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from polyglot_jax.models.config import DecoderConfig
from polyglot_jax.models.hf_layout.base import Getter, Layout, Path

QKV = ("q_proj", "k_proj", "v_proj")


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

    def split_rows(self, w: np.ndarray, cfg: DecoderConfig) -> dict[str, np.ndarray]:
        """The q/k/v parts of the fused rows of ``w``.

        Args:
          w: ``[(heads + 2 * kv_heads) * head_dim, cols]`` in this family's fused row order
            (a fused weight, bias column or LoRA B matrix).
          cfg: the model.

        Returns:
          ``{"q_proj": [heads, head_dim, cols], "k_proj"/"v_proj": [kv_heads, head_dim, cols]}``.
        """
        groups, slots = self.group_shape(cfg)
        d = cfg.head_dim
        w = w.reshape(groups, slots, d, -1)
        return {
            proj: w[:, sl].reshape(-1, d, w.shape[-1])
            for proj, sl in zip(QKV, self._slots(cfg), strict=True)
        }

    def fuse_rows(self, parts: dict[str, np.ndarray], cfg: DecoderConfig) -> np.ndarray:
        """Inverse of :meth:`split_rows`: q/k/v ``[n, head_dim, cols]`` → fused ``[rows, cols]``."""
        groups, _ = self.group_shape(cfg)
        d = cfg.head_dim
        grouped = [np.asarray(parts[p]).reshape(groups, -1, d, parts[p].shape[-1]) for p in QKV]
        fused = np.concatenate(grouped, axis=1)  # [groups, slots, head_dim, cols]
        return np.ascontiguousarray(fused.reshape(-1, fused.shape[-1]))

    def split_qkv(
        self, get: Getter, i: int, cfg: DecoderConfig
    ) -> Iterator[tuple[Path, np.ndarray]]:
        base = self.layer.format(i=i)
        w = self.split_rows(get(f"{base}.{self.qkv}.weight"), cfg)  # [n, head_dim, embed]
        b = self.split_rows(get(f"{base}.{self.qkv}.bias")[:, None], cfg) if cfg.qkv_bias else {}
        for proj in QKV:
            yield (proj, "kernel"), np.ascontiguousarray(w[proj].transpose(2, 0, 1))
            if b:
                yield (proj, "bias"), b[proj][..., 0]

    def fuse_qkv(
        self, param: Callable, i: int, cfg: DecoderConfig
    ) -> Iterator[tuple[str, np.ndarray]]:
        layer = f"layers_{i}"
        kernels = {  # [n, head_dim, embed]
            p: np.asarray(param(layer, "attention", p, "kernel")).transpose(1, 2, 0) for p in QKV
        }
        yield f"{self.qkv}.weight", self.fuse_rows(kernels, cfg)
        if cfg.qkv_bias:
            biases = {p: np.asarray(param(layer, "attention", p, "bias"))[..., None] for p in QKV}
            yield f"{self.qkv}.bias", self.fuse_rows(biases, cfg)[:, 0]
