"""Training throughput: our jitted step vs ``transformers`` + PyTorch on the same Llama, and MFU.

Both sides train a random Llama (``--layers`` x ``--hidden``, 32k vocabulary) in float32 with
AdamW on the same token batches (``--batch`` x ``--length``, every token trained), and start
from the same weights (the PyTorch model is saved and loaded into our decoder). Times exclude
compilation / the first step. MFU = tokens/s x training FLOPs per token (6 x non-embedding
parameters + 12 x layers x width x length for attention, as in the PaLM paper) / peak, where
the peak is a measured float32 matmul rate on this machine (``--peak`` overrides it).

  python benchmarks/train_throughput.py [--layers 4 --hidden 512 --batch 8 --length 256]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from random_llama import random_llama

from polyglot_jax.models import Decoder
from polyglot_jax.training import partitioning, trainer


def matmul_peak(size: int = 2048, repeats: int = 10) -> float:
    """Measured float32 FLOP/s of a jitted square matmul."""
    a = jnp.ones((size, size), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        out = f(a)
    out.block_until_ready()
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--skip_reference", action="store_true", help="time ours only")
    parser.add_argument("--peak", type=float, help="peak FLOP/s (default: measured matmul)")
    args = parser.parse_args()

    reference, cfg, params = random_llama(args.layers, args.hidden, args.length)
    rng = np.random.RandomState(0)
    batches = [
        rng.randint(1, 32000, (args.batch, args.length + 1)).astype(np.int32)
        for _ in range(args.steps + 1)
    ]

    # polyglot_jax: the jitted, donated train step.
    adam = dict(b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.0)
    steps = trainer.ShardedSteps(
        Decoder(cfg),
        optax.adamw(1e-4, **adam),
        partitioning.create_mesh(),
        partitioning.standard_logical_axis_rules(),
        args.length,
    )
    state = steps.init_from(0, params)

    def ours(tokens: np.ndarray) -> trainer.TrainState:
        batch = {
            "decoder_input_tokens": tokens[:, :-1],
            "decoder_target_tokens": tokens[:, 1:],
            "decoder_loss_weights": np.ones_like(tokens[:, 1:]),
        }
        new_state, metrics = steps.train(state, steps.place_batch(batch))
        metrics["loss"].block_until_ready()
        return new_state

    state = ours(batches[0])
    start = time.perf_counter()
    for tokens in batches[1:]:
        state = ours(tokens)
    t_ours = (time.perf_counter() - start) / args.steps

    # transformers + PyTorch: forward with labels, backward, AdamW.
    reference.train()
    optimizer = torch.optim.AdamW(
        reference.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0
    )

    def theirs(tokens: np.ndarray) -> None:
        ids = torch.from_numpy(tokens.astype(np.int64))
        loss = reference(input_ids=ids[:, :-1], labels=ids[:, :-1]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    t_hf = float("nan")
    if not args.skip_reference:
        theirs(batches[0])
        start = time.perf_counter()
        for tokens in batches[1:]:
            theirs(tokens)
        t_hf = (time.perf_counter() - start) / args.steps

    tokens_per_step = args.batch * args.length
    n_params = sum(x.size for x in jax.tree.leaves(params))
    non_embedding = n_params - 2 * cfg.vocab_size * cfg.embed_dim * (not cfg.tie_embeddings)
    head = cfg.vocab_size * cfg.embed_dim  # the output projection is a matmul too
    flops_per_token = 6 * (non_embedding + head) + 12 * cfg.num_layers * cfg.embed_dim * args.length
    peak = args.peak or matmul_peak()
    print(
        f"Llama {args.layers} x {args.hidden}, {n_params / 1e6:.1f}M params, fp32, AdamW, batch "
        f"{args.batch} x {args.length} tokens, {jax.device_count()} {jax.devices()[0].platform} "
        f"device(s), torch threads {torch.get_num_threads()}; peak {peak / 1e9:.1f} GFLOP/s"
    )
    print("| implementation | s/step | tokens/s | speed-up | MFU |")
    print("|---|---|---|---|---|")
    for name, seconds in [("transformers + PyTorch", t_hf), ("polyglot_jax", t_ours)]:
        rate = tokens_per_step / seconds
        print(
            f"| {name} | {seconds:.3f} | {rate:,.0f} | {t_hf / seconds:.2f} | "
            f"{rate * flops_per_token / peak:.1%} |"
        )


if __name__ == "__main__":
    main()
