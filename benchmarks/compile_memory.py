"""Compile-only memory of full-size training steps on simulated meshes (no weights needed).

Lowers and compiles the sharded train step with abstract inputs on up to 128 fake CPU devices
and prints XLA's ``memory_analysis()`` per device next to a formula and each accelerator's
memory. The formula, per device over an FSDP axis of n devices, N parameters, L layers, batch
b per device, sequence s, width e, heads h, vocabulary V:

  params 4N/n + gradients 4N/n + optimizer (AdamW 8N/n; Adafactor its factored vectors)
  + activations with full remat: saved layer inputs 2·L·b·s·e (bf16), one layer recomputed
    (scores and probabilities b·h·s²·(4+2)), logits and their gradient 3·4·b·s·V, and one
    layer's gathered weights and unreduced gradients 2·4·N/L.
  LoRA on one device: the frozen fp32 base 4N plus 16 bytes per adapter parameter.

Usage::

  python benchmarks/compile_memory.py                       # the table of the scan + remat rows
  python benchmarks/compile_memory.py --rows=7b_fsdp8,7b_fsdp8_unrolled
  python benchmarks/compile_memory.py --loss_rows=bloom_7b1,qwen2_7b  # chunked loss table

``--loss_rows`` compiles the train step of each model (with ``--loss_layers`` blocks, so it
compiles in seconds: the loss head is what differs) on one device, with the whole-logits loss
and with ``DecoderConfig.loss_chunk = --loss_chunk``, and prints the temp memory side by side.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=128"
).strip()

import jax
import jax.numpy as jnp
import numpy as np

from polyglot_jax import gin_utils
from polyglot_jax.models import Decoder, DecoderConfig, LoRAConfig, lora
from polyglot_jax.training import optimizers, partitioning, trainer

GiB = 1024**3
ACCELERATORS = {"v5e": 16, "v4": 32, "H100": 80}
# name: (model gin, fsdp devices, LoRA, optimizer, scan)
ROWS = {
    "7b_fsdp8_unrolled": ("llama2_7b", 8, False, "adamw", False),
    "7b_fsdp8": ("llama2_7b", 8, False, "adamw", True),
    "7b_fsdp8_adafactor": ("llama2_7b", 8, False, "adafactor", True),
    "7b_fsdp32": ("llama2_7b", 32, False, "adamw", True),
    "7b_lora": ("llama2_7b", 1, True, "adamw", True),
    "70b_fsdp64": ("llama2_70b", 64, False, "adamw", True),
    "70b_fsdp128": ("llama2_70b", 128, False, "adamw", True),
}
NAMES = (
    "decoder_input_tokens",
    "decoder_target_tokens",
    "decoder_loss_weights",
    "decoder_segment_ids",
    "decoder_positions",
)


def compile_step(
    cfg: DecoderConfig, devices: int, optimizer: str, seq: int, batch_per_device: int
) -> tuple:
    """``(memory analysis, steps, compile seconds)`` of the train step on ``devices`` (FSDP)."""
    mesh = partitioning.create_mesh(1, devices, 1, devices=jax.devices()[:devices])
    steps = trainer.ShardedSteps(
        Decoder(cfg),
        optimizers.make_optimizer(name=optimizer),
        mesh,
        partitioning.standard_logical_axis_rules(),
        seq,
    )
    spec = jax.ShapeDtypeStruct(
        (batch_per_device * devices, seq), jnp.int32, sharding=steps.batch_sharding
    )
    start = time.perf_counter()
    with steps.context():
        compiled = steps._train.lower(steps.abstract_state, dict.fromkeys(NAMES, spec)).compile()
    return compiled.memory_analysis(), steps, time.perf_counter() - start


LOSS_ROWS = ("bloom_7b1", "qwen2_7b")


def loss_grad_memory(cfg: DecoderConfig, seq: int, batch: int) -> object:
    """Memory analysis of the loss's gradient alone (no optimizer), on one device."""
    import flax.linen as nn

    model = Decoder(cfg)
    tokens = jax.ShapeDtypeStruct((batch, seq), jnp.int32)
    spec = dict.fromkeys(NAMES, tokens)
    spec["decoder_loss_weights"] = jax.ShapeDtypeStruct((batch, seq), jnp.float32)
    init = lambda: nn.unbox(model.init(jax.random.PRNGKey(0), jnp.ones((1, 8), jnp.int32)))  # noqa: E731
    params = jax.eval_shape(init)["params"]
    grad = jax.jit(jax.grad(lambda p, b: trainer.loss_sums(p, b, model)[0]))
    return grad.lower(params, spec).compile().memory_analysis()


def loss_table(
    models: list[str], seq: int, batches: list[int], layers: int, chunk: int, grad_only: bool
) -> None:
    """Prints XLA temp memory of the train step with and without the chunked loss.

    The chunked loss holds one vocabulary chunk's logits [batch, seq, chunk] instead of all.
    """
    what = "the loss gradient alone" if grad_only else "the train step (AdamW)"
    print(f"\nloss head: seq {seq}, {layers} layer(s), remat full, one device;")
    print(f"XLA:CPU temp memory of {what}, whole logits vs loss_chunk={chunk}\n")
    print("| model | vocab | batch | logits f32 GiB | whole temp GiB | chunked temp GiB | ratio |")
    print("|---|---|---|---|---|---|---|")
    for model in models:
        gin_utils.configure(gin_utils.GinArgs(files=[f"models/{model}.gin"]))
        cfg = DecoderConfig().replace(remat="full", scan_layers=True, num_layers=layers)
        for batch in batches:
            temps = []
            for loss_chunk in (0, chunk):
                steps_cfg = cfg.replace(loss_chunk=loss_chunk)
                if grad_only:
                    mem = loss_grad_memory(steps_cfg, seq, batch)
                else:
                    mem, _, _ = compile_step(steps_cfg, 1, "adamw", seq, batch)
                temps.append(mem.temp_size_in_bytes / GiB)
            logits = batch * seq * cfg.vocab_size * 4 / GiB
            print(
                f"| {model} | {cfg.vocab_size} | {batch} | {logits:.2f} | {temps[0]:.2f} "
                f"| {temps[1]:.2f} | {temps[0] / temps[1]:.2f}x |"
            )
            sys.stdout.flush()


def size(tree: object) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def formula(cfg: DecoderConfig, steps: trainer.ShardedSteps, n: int, b: int, s: int) -> dict:
    """Predicted bytes per device: state (params + optimizer), gradients, activations."""
    params = size(steps.abstract_state.params)
    adapters = size(lora.adapters_only(steps.abstract_state.params))
    opt = 4 * size(steps.abstract_state.opt_state)
    if cfg.lora is not None:
        state, grads = 4 * params + opt, 4 * adapters
    else:
        state, grads = (4 * params + opt) / n, 4 * params / n
    e, h, v, layers = cfg.embed_dim, cfg.num_heads, cfg.vocab_size, cfg.num_layers
    acts = 2 * layers * b * s * e + b * h * s * s * 6 + 12 * b * s * v + 8 * params / layers
    return {"state": state, "grads": grads, "acts": acts, "params": params, "opt": opt / n}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default=",".join(r for r in ROWS if r != "7b_fsdp8_unrolled"))
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch_per_device", type=int, default=1)
    parser.add_argument("--remat", default="full")
    parser.add_argument("--loss_rows", default="", help=f"e.g. {','.join(LOSS_ROWS)}")
    parser.add_argument("--loss_layers", type=int, default=2)
    parser.add_argument("--loss_chunk", type=int, default=8192, help="vocabulary entries")
    parser.add_argument("--loss_batches", default="1,8", help="sequences per device")
    parser.add_argument("--loss_grad_only", action="store_true", help="no optimizer step")
    args = parser.parse_args(argv)
    if args.loss_rows:
        models = args.loss_rows.split(",")
        batches = [int(b) for b in args.loss_batches.split(",")]
        loss_table(
            models, args.seq, batches, args.loss_layers, args.loss_chunk, args.loss_grad_only
        )
        return 0
    b, s = args.batch_per_device, args.seq
    print(f"\nseq {s}, {b} sequence(s) per device, remat={args.remat}, fp32 master weights, bf16")
    print("compute; XLA:CPU memory_analysis per device (state = arguments, temp = scratch)\n")
    accel = " | ".join(f"fits {k} {v}G" for k, v in ACCELERATORS.items())
    print(
        "| setting | params | optimizer state GiB | XLA state GiB | XLA temp GiB | XLA total GiB | "
        f"formula state+grads+acts GiB | formula total GiB | {accel} | compile s |"
    )
    print("|---" * (9 + len(ACCELERATORS)) + "|")
    for row in args.rows.split(","):
        model, n, use_lora, optimizer, scan = ROWS[row]
        gin_utils.configure(gin_utils.GinArgs(files=[f"models/{model}.gin"]))
        cfg = DecoderConfig().replace(remat=args.remat, scan_layers=scan)
        if use_lora:
            cfg = cfg.replace(lora=LoRAConfig(rank=16))
        mem, steps, seconds = compile_step(cfg, n, optimizer, s, b)
        f = formula(cfg, steps, n, b, s)
        state, temp = mem.argument_size_in_bytes / GiB, mem.temp_size_in_bytes / GiB
        total = state + temp
        predicted = (f["state"] + f["grads"] + f["acts"]) / GiB
        fits = " | ".join("yes" if total <= v else "no" for v in ACCELERATORS.values())
        print(
            f"| {row} ({optimizer}, {'scan' if scan else 'unrolled'}) | {f['params'] / 1e9:.2f}B "
            f"| {f['opt'] / GiB:.2f} | {state:.2f} | {temp:.2f} | {total:.2f} | "
            f"{f['state'] / GiB:.2f}+{f['grads'] / GiB:.2f}+{f['acts'] / GiB:.2f} | "
            f"{predicted:.2f} | {fits} | {seconds:.0f} |"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
