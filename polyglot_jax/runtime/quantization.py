"""Weight-only int8 quantization of a loaded model for serving, with qwix.

Every projection kernel (attention q/k/v/o, the MLP, the LM head) is stored as int8 with one
float scale per output channel (qwix's post-training quantization: symmetric absmax, the scale
``absmax / 127.5``, values rounded and clipped to [-128, 127]); the activations, norms and
embedding table stay in the model's dtype. Weight bytes drop to about half of bfloat16's, a
quarter of float32's. qwix intercepts the projections' einsums and dequantizes the kernels
inside them (``Projection`` passes a quantized kernel to the einsum untouched). A model with
scanned layers is unrolled first (qwix scales one layer's kernel). The quality cost is
measured by ``benchmarks/quantization.py``: the log-likelihood difference on XCOPA and the
agreement of greedy answers with the unquantized model.
"""

from __future__ import annotations

import logging
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import qwix
from jax.sharding import Mesh

from polyglot_jax.errors import ConfigError
from polyglot_jax.models import Decoder
from polyglot_jax.models.config import WEIGHT_QUANTIZATIONS
from polyglot_jax.models.decoder import unstack_layers
from polyglot_jax.training import partitioning, runs

log = logging.getLogger(__name__)

QUANTIZATIONS = WEIGHT_QUANTIZATIONS
PROJECTIONS = r".*"  # qwix quantizes the einsums whose operand is a parameter: the kernels


def check(mode: str) -> str:
    """``mode`` after checking it is one of :data:`QUANTIZATIONS`.

    Raises:
      ConfigError: any other value.
    """
    if mode not in QUANTIZATIONS:
        raise ConfigError(f"quantization {mode!r}: choose from {', '.join(QUANTIZATIONS)}")
    return mode


def quantize(
    decoder: Decoder,
    params: Any,
    mode: str,
    mesh: Mesh | None = None,
    rules: partitioning.AxisRules | None = None,
) -> tuple[nn.Module, Any]:
    """The quantized model and its parameters (``mode="none"``: both unchanged).

    Args:
      decoder: the loaded decoder.
      params: its parameters (on ``mesh`` when given).
      mode: one of :data:`QUANTIZATIONS`.
      mesh: where the quantized parameters are placed, with the same logical-axis shardings
        as the parameters they replace (None: the default device).
      rules: logical axis rules for ``mesh``.

    Returns:
      ``(model, params)``: a module with the decoder's ``apply`` signature whose projections
      read int8 kernels, and its parameter tree (``QArray`` leaves hold ``qvalue`` and
      ``scale``).
    """
    if check(mode) == "none":
        return decoder, params
    rule = qwix.QuantizationRule(module_path=PROJECTIONS, weight_qtype=jnp.int8)
    config = decoder.config.replace(weight_quantization=mode)
    if config.scan_layers:  # qwix scales one layer's kernel: unstack the scanned layers first
        log.info("int8: the %d scanned layers are unrolled", config.num_layers)
        config, params = config.replace(scan_layers=False), unstack_layers(params)
    model = qwix.quantize_model(Decoder(config), qwix.PtqProvider([rule]))
    abstract = runs.abstract_params(model, mesh, rules)
    quantized = qwix.quantize_params(params, abstract)
    if mesh is not None:
        quantized = jax.tree.map(lambda p, a: jax.device_put(p, a.sharding), quantized, abstract)
    before, after = weight_bytes(params), weight_bytes(quantized)
    log.info("int8 weights: %.1f MB -> %.1f MB", before / 1e6, after / 1e6)
    return model, quantized


def weight_bytes(params: Any) -> int:
    """Bytes of every array in ``params`` (int8 values and their scales included)."""
    return sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(params))
