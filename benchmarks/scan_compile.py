"""Compile time of the train step with layers scanned vs unrolled, at small width on CPU.

Lowers and compiles the jitted train step (forward, backward, AdamW) on abstract inputs only:
``jax.jit(...).lower(...).compile()``, no weights. Unrolled compile time grows with depth;
scanned compiles one layer body whatever the depth.

Usage::

  python benchmarks/scan_compile.py                       # 32 and 80 layers, width 256
  python benchmarks/scan_compile.py --layers=32 --embed=512 --remat=full
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp

from polyglot_jax.models import Decoder, DecoderConfig
from polyglot_jax.training import optimizers, partitioning, trainer

NAMES = ("decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights")


def compile_seconds(cfg: DecoderConfig, batch: int, seq: int) -> tuple[float, float]:
    """``(lower seconds, compile seconds)`` of ``cfg``'s train step on one device."""
    steps = trainer.ShardedSteps(
        Decoder(cfg),
        optimizers.make_optimizer(warmup_steps=1),
        partitioning.create_mesh(devices=jax.devices()[:1]),
        partitioning.standard_logical_axis_rules(),
        seq,
    )
    spec = jax.ShapeDtypeStruct((batch, seq), jnp.int32, sharding=steps.batch_sharding)
    with steps.context():
        start = time.perf_counter()
        lowered = steps._train.lower(steps.abstract_state, dict.fromkeys(NAMES, spec))
        lowered_at = time.perf_counter()
        lowered.compile()
    return lowered_at - start, time.perf_counter() - lowered_at


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", default="32,80")
    parser.add_argument("--embed", type=int, default=256)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--remat", default="full")
    args = parser.parse_args(argv)
    base = DecoderConfig(
        vocab_size=1024,
        embed_dim=args.embed,
        num_heads=args.embed // 64,
        num_kv_heads=args.embed // 64,
        head_dim=64,
        mlp_dim=4 * args.embed,
        max_length=args.seq,
        remat=args.remat,
    )
    print(f"\nwidth {args.embed}, seq {args.seq}, batch {args.batch}, remat={args.remat}, CPU\n")
    print("| layers | layout | lower s | compile s | total s |")
    print("|---|---|---|---|---|")
    for layers in (int(n) for n in args.layers.split(",")):
        for scan in (True, False):
            cfg = base.replace(num_layers=layers, scan_layers=scan)
            lower, comp = compile_seconds(cfg, args.batch, args.seq)
            layout = "scanned" if scan else "unrolled"
            print(f"| {layers} | {layout} | {lower:.1f} | {comp:.1f} | {lower + comp:.1f} |")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
