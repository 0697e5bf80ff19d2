"""Trains a tiny decoder for a few steps on each mesh shape and prints the final parameters.

Run in its own process with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``; the test
compares every mesh against the single-device run.
"""

import json
import sys

import jax
import numpy as np

from polyglot_jax.models import Decoder, DecoderConfig
from polyglot_jax.training import optimizers, partitioning, trainer

CFG = DecoderConfig(
    vocab_size=64,
    embed_dim=32,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    head_dim=8,
    mlp_dim=64,
    max_length=16,
)


def run(mesh_shape: tuple[int, int, int]) -> dict:
    devices = jax.devices()[: int(np.prod(mesh_shape))]
    steps = trainer.ShardedSteps(
        Decoder(CFG),
        optimizers.make_optimizer(1e-2, warmup_steps=1, schedule="constant"),
        partitioning.create_mesh(*mesh_shape, devices=devices),
        partitioning.standard_logical_axis_rules(),
        16,
    )
    state = steps.init(0)
    rng = np.random.RandomState(0)
    losses = []
    for _ in range(3):
        t = rng.randint(1, 64, (8, 16)).astype(np.int32)
        batch = {
            "decoder_target_tokens": t,
            "decoder_input_tokens": np.concatenate([np.zeros((8, 1), np.int32), t[:, :-1]], 1),
            "decoder_loss_weights": np.ones_like(t),
        }
        state, metrics = steps.train(state, steps.place_batch(batch))
        losses.append(float(metrics["loss"]))
    leaves = [np.asarray(jax.device_get(x)).tolist() for x in jax.tree.leaves(state.params)]
    spec = str(state.params["layers_0"]["mlp"]["up_proj"]["kernel"].sharding.spec)
    return {"losses": losses, "params": leaves, "spec": spec}


if __name__ == "__main__":
    shapes = [tuple(int(x) for x in s.split(",")) for s in sys.argv[1:]]
    print(json.dumps({",".join(map(str, s)): run(s) for s in shapes}))
