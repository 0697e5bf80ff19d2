"""Compile-only memory of full-size training steps on a simulated mesh (no weights needed).

Lowers and compiles the sharded train step with abstract inputs and prints XLA's
``memory_analysis()`` per device next to the formula that predicts the persistent state:

  full fine-tuning, FSDP over n devices: (4 param + 8 Adam) bytes * N / n
  LoRA on one device: 4 bytes * N (frozen fp32 base) + 12 bytes * N_adapter

Gradients, activations and gathered weights are XLA temporaries (the "temp" column).

Usage::

  python benchmarks/compile_memory.py                      # Llama 2 7B: FSDP x8 and LoRA x1
  python benchmarks/compile_memory.py --model=pythia_1b --seq=1024
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()

import jax
import jax.numpy as jnp
import numpy as np

from polyglot_jax import gin_utils
from polyglot_jax.models import Decoder, DecoderConfig, LoRAConfig, lora
from polyglot_jax.training import partitioning, trainer

GiB = 1024**3


def compile_step(cfg: DecoderConfig, mesh_shape: tuple[int, int, int], batch: int, seq: int):
    devices = jax.devices()[: int(np.prod(mesh_shape))]
    mesh = partitioning.create_mesh(*mesh_shape, devices=devices)
    steps = trainer.ShardedSteps(
        Decoder(cfg),
        trainer.make_optimizer(),
        mesh,
        partitioning.standard_logical_axis_rules(),
        seq,
    )
    spec = jax.ShapeDtypeStruct((batch, seq), jnp.int32, sharding=steps.batch_sharding)
    names = (
        "decoder_input_tokens",
        "decoder_target_tokens",
        "decoder_loss_weights",
        "decoder_segment_ids",
        "decoder_positions",
    )
    start = time.perf_counter()
    with steps.context():
        compiled = steps._train.lower(steps.abstract_state, dict.fromkeys(names, spec)).compile()
    params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(steps.abstract_state.params))
    adapters = sum(
        int(np.prod(v.shape)) for v in lora.adapters_only(steps.abstract_state.params).values()
    )
    return compiled.memory_analysis(), params, adapters, time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="llama2_7b")
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch_per_device", type=int, default=1)
    parser.add_argument("--remat", default="full")
    args = parser.parse_args(argv)
    gin_utils.configure(gin_utils.GinArgs(files=[f"models/{args.model}.gin"]))
    base = DecoderConfig().replace(remat=args.remat)
    runs = [
        ("full FT, FSDP x8", base, (1, 8, 1), 8),
        ("LoRA r=16 q,v, 1 device", base.replace(lora=LoRAConfig(rank=16)), (1, 1, 1), 1),
    ]
    rows = []
    for name, cfg, mesh, devices in runs:
        mem, n, n_adapter, seconds = compile_step(
            cfg, mesh, args.batch_per_device * devices, args.seq
        )
        predicted = 12 * n / devices if cfg.lora is None else 4 * n + 12 * n_adapter
        persistent = mem.argument_size_in_bytes  # params + optimizer state live across steps
        rows.append(
            (
                name,
                n,
                persistent / GiB,
                predicted / GiB,
                mem.temp_size_in_bytes / GiB,
                (persistent + mem.temp_size_in_bytes) / GiB,
                seconds,
            )
        )
    print(
        f"\n{args.model}, seq {args.seq}, {args.batch_per_device} sequence(s) per device, "
        f"remat={args.remat}, fp32 master weights, bf16 compute\n"
    )
    print(
        "| setting | params | state/device GiB (XLA) | formula GiB | ratio | temp GiB | "
        "total/device GiB | compile s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, n, state, predicted, temp, total, seconds in rows:
        print(
            f"| {name} | {n / 1e9:.2f}B | {state:.2f} | {predicted:.2f} | {state / predicted:.3f} "
            f"| {temp:.2f} | {total:.2f} | {seconds:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
