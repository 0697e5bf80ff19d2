"""Trains a tiny decoder for 3 steps on the demo pipeline, as one of several processes or as one
process that reads every host's data shard itself; writes the losses and parameters.

  python multihost_train.py OUT.npz --hosts=2 [--process_id=I --coordinator_address=ADDR]

Without ``--process_id`` the single process concatenates the hosts' shards in host order, which
is the global batch the processes build together.
"""

import argparse

import jax
import numpy as np
import seqio
from jax.experimental import multihost_utils

from polyglot_jax.data import pipeline
from polyglot_jax.models import Decoder, DecoderConfig
from polyglot_jax.training import loop, multihost, optimizers, partitioning, trainer

CFG = DecoderConfig(
    vocab_size=1024,
    embed_dim=32,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    head_dim=8,
    mlp_dim=64,
    max_length=32,
)
BATCH, LENGTH = 8, 32


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--hosts", type=int, default=2)
    args, rest = parser.parse_known_args()
    flags, _ = multihost.parse_flags(rest)
    multihost.initialize(flags)
    import tasks.demo  # noqa: F401  (registers the demo mixtures)

    steps = trainer.ShardedSteps(
        Decoder(CFG),
        optimizers.make_optimizer(1e-2, warmup_steps=1, schedule="constant"),
        partitioning.create_mesh(data=2, fsdp=2),
        partitioning.standard_logical_axis_rules(),
        LENGTH,
    )
    shards = [jax.process_index()] if jax.process_count() > 1 else list(range(args.hosts))
    streams = [
        pipeline.train_batches(
            "demo_pinch",
            {"targets": LENGTH},
            BATCH,
            seed=0,
            shard_info=seqio.ShardInfo(i, args.hosts),
        )
        for i in shards
    ]
    state = steps.init(0)
    losses = []
    for _ in range(3):
        parts = [next(s) for s in streams]
        local = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        state, metrics = steps.train(state, steps.place_batch(local))
        losses.append(float(metrics["loss"]))
    # Per-language validation loss: each host scores its shard, padded to the same batch count.
    per_shard = [
        pipeline.validation_batches(
            "demo_pinch", {"targets": LENGTH}, BATCH, shard_info=seqio.ShardInfo(i, args.hosts)
        )
        for i in shards
    ]
    merged = {
        lang: [
            {k: np.concatenate([p[lang][b][k] for p in per_shard]) for k in per_shard[0][lang][b]}
            for b in range(len(per_shard[0][lang]))
        ]
        for lang in per_shard[0]
    }
    validation = loop.validation_losses(steps, state.params, merged)
    unsharded = {}
    if jax.process_count() == 1:  # the same losses from one unsharded pass
        whole = pipeline.validation_batches("demo_pinch", {"targets": LENGTH}, BATCH)
        unsharded = loop.validation_losses(steps, state.params, whole)
    gathered = jax.tree.map(
        lambda x: np.asarray(multihost_utils.process_allgather(x, tiled=True)),
        state.params,
    )
    if jax.process_index() == 0:
        leaves = {f"p{i}": v for i, v in enumerate(jax.tree.leaves(gathered))}
        langs = sorted(validation)
        np.savez(
            args.out,
            losses=np.asarray(losses),
            validation=np.asarray([validation[lang] for lang in langs]),
            validation_langs=np.asarray(langs),
            validation_unsharded=np.asarray([unsharded.get(lang, np.nan) for lang in langs]),
            **leaves,
        )


if __name__ == "__main__":
    main()
