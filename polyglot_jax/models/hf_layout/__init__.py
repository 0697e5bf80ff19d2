"""Per-family tensor layouts of Hugging Face checkpoints and their config fields.

:data:`LAYOUTS` maps a ``config.json`` ``model_type`` to the :class:`Layout` that converts that
family's config and tensors to this decoder's and back. The machinery lives in
:mod:`~polyglot_jax.models.hf_layout.base`; each family module holds one layout.
"""

from __future__ import annotations

from polyglot_jax.models.hf_layout.base import (
    NO_PREFIX,
    Layout,
    UnsupportedConfigError,
    check_head,
    dense_in,
    dense_out,
)
from polyglot_jax.models.hf_layout.bloom import BloomLayout
from polyglot_jax.models.hf_layout.falcon import FalconLayout
from polyglot_jax.models.hf_layout.fused import FusedLayout
from polyglot_jax.models.hf_layout.gpt_neox import GPTNeoXLayout
from polyglot_jax.models.hf_layout.llama import LlamaLayout

LAYOUTS: dict[str, Layout] = {
    "llama": LlamaLayout("llama"),
    "mistral": LlamaLayout("mistral"),
    "qwen2": LlamaLayout("qwen2"),
    "falcon": FalconLayout(),
    "bloom": BloomLayout(),
    "gpt_neox": GPTNeoXLayout(),
}

__all__ = [
    "LAYOUTS",
    "NO_PREFIX",
    "BloomLayout",
    "FalconLayout",
    "FusedLayout",
    "GPTNeoXLayout",
    "Layout",
    "LlamaLayout",
    "UnsupportedConfigError",
    "check_head",
    "dense_in",
    "dense_out",
]
