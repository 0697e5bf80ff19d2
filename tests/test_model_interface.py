"""The model interface on 8 simulated devices: every mesh answers and scores like one device.

The test runs this file as a script in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``: it restores one random run onto each
mesh (orbax reads every array into its sharding) and prints generations, per-token scores and
the loss as JSON.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np

SHAPES = ["1,1,1", "1,8,1", "1,4,2", "2,2,2"]
PROMPTS = [[5, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18], [3], [40, 41, 42, 43, 44]]


def _config():
    from polyglot_jax.models import DecoderConfig

    return DecoderConfig(
        vocab_size=64,
        embed_dim=32,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=8,
        mlp_dim=64,
        max_length=64,
    )


def run(path: str, shape: str) -> dict:
    """Generations, scores and loss of the run at ``path`` on a ``(data, fsdp, model)`` mesh."""

    from polyglot_jax.runtime import decoding
    from polyglot_jax.runtime.chat_model import ChatModel
    from polyglot_jax.runtime.model import inference_mesh
    from polyglot_jax.serving import engine, jobs

    sizes = [int(x) for x in shape.split(",")]
    mesh = inference_mesh(sizes) if np.prod(sizes) > 1 else None
    lm = ChatModel.load(path, mesh)
    lm.stop_ids = [63]  # a token the random model emits often, so rows end at different steps
    greedy = lm.generate(PROMPTS, 10)
    sampled = lm.generate(
        PROMPTS, 10, decoding.Sampling(temperature=0.9, top_k=20), seeds=[1, 2, 3, 4]
    )
    beams = lm.generate(PROMPTS, 10, decoding.Sampling(num_beams=3, no_repeat_ngram_size=2))
    batcher = engine.Engine(lm, max_batch=4)
    jobs = [jobs.Job([prompt], [10], seeds=[0]) for prompt in PROMPTS]
    for job in jobs:
        batcher.submit(job)
    served = [job.future.result(timeout=300)[0].tokens for job in jobs]
    batcher.close()
    rng = np.random.RandomState(1)
    top = lm.top_scores(rng.randint(1, 64, (3, 9)), rng.randint(1, 64, (3, 9)), k=4)
    rng = np.random.RandomState(0)
    tokens = rng.randint(1, 64, (5, 16))
    weights = (rng.rand(5, 16) > 0.3).astype(np.float32)
    scores = lm.score(tokens[:, :-1], tokens[:, 1:], weights[:, 1:])
    loss = lm.loss(
        {
            "decoder_input_tokens": tokens[:, :-1],
            "decoder_target_tokens": tokens[:, 1:],
            "decoder_loss_weights": weights[:, 1:],
        }
    )
    kernel = lm.params["layers_0"]["mlp"]["up_proj"]["kernel"]
    return {
        "greedy": greedy.tokens,
        "reasons": greedy.finish_reasons,
        "sampled": sampled.tokens,
        "beams": beams.tokens,
        "served": served,
        "top": [t.tolist() for t in top],
        "scores": scores.tolist(),
        "loss": loss["loss"],
        "spec": str(getattr(kernel.sharding, "spec", "")),
    }


def test_every_mesh_generates_and_scores_like_one_device(random_run, tmp_path):
    path = random_run(tmp_path / "run", _config(), {"mixture_or_task_name": "demo_uniform"})
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[1]),
    }
    proc = subprocess.run(
        [sys.executable, __file__, str(path), *SHAPES],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    one = runs["1,1,1"]
    for shape in SHAPES[1:]:
        got = runs[shape]
        for key in ("greedy", "reasons", "sampled", "beams", "served"):
            assert got[key] == one[key], (shape, key)
        picked, top_ids, top_logp = (np.asarray(a) for a in got["top"])
        assert (top_ids == np.asarray(one["top"][1])).all()
        assert np.abs(picked - np.asarray(one["top"][0])).max() <= 1e-5
        assert np.abs(top_logp - np.asarray(one["top"][2])).max() <= 1e-5
        assert np.abs(np.asarray(got["scores"]) - np.asarray(one["scores"])).max() <= 1e-5
        assert abs(got["loss"] - one["loss"]) <= 1e-5
    assert runs["1,4,2"]["spec"] == runs["1,8,1"]["spec"] == "P('fsdp', 'model')"  # placed
    assert any(t for t in one["greedy"]) and np.asarray(one["scores"]).min() < 0
    assert one["served"] == one["greedy"]  # the serving engine's slots decode as generate does


def test_one_device_scores_are_log_probabilities(tiny_config):
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from polyglot_jax.models import Decoder
    from polyglot_jax.runtime.model import LanguageModel

    decoder = Decoder(tiny_config)
    params = nn.unbox(decoder.init(jax.random.PRNGKey(0), jnp.ones((1, 4), jnp.int32)))["params"]
    lm = LanguageModel(decoder, params)
    tokens = np.array([[3, 4, 5, 6]])
    everything = np.stack(
        [lm.score(tokens, np.full((1, 4), t), np.ones((1, 4)))[0] for t in range(64)]
    )
    np.testing.assert_allclose(np.exp(everything).sum(axis=0), 1.0, rtol=1e-5)
    masked = lm.score(tokens, tokens, np.array([[1, 0, 1, 0]]))
    assert masked[0, 1] == 0 and masked[0, 3] == 0 and masked[0, 0] < 0


if __name__ == "__main__":
    print(json.dumps({shape: run(sys.argv[1], shape) for shape in sys.argv[2:]}))
