"""Packing efficiency and input-pipeline throughput, ours vs SeqIO's ``trim_and_pack``.

Efficiency = real tokens / all tokens in packed rows, on an OASST-like length distribution
(log-normal, median 330 tokens, clipped to [16, 4096]). Throughput = target tokens per second
that the demo pipeline delivers on this machine (render, tokenize, pack, batch), against what
train steps consume: the tiny model measured here, and a 1B-class model at 50% MFU on one H100
(989 TFLOP/s bf16 peak, 6 FLOPs per parameter per token).

  python benchmarks/packing.py
"""

from __future__ import annotations

import time

import numpy as np
import seqio
import tensorflow as tf

from polyglot_jax.data import chat_tasks, packing, pipeline

H100_BF16_FLOPS = 989e12


def oasst_like_lengths(n: int = 4000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(330), 0.8, n).astype(int), 16, 4096)


def efficiency(rows: list[dict], length: int) -> float:
    real = sum(int((r["targets"] != 0).sum()) for r in rows)
    return real / (len(rows) * length)


def packed_rows(lengths: np.ndarray, length: int, ours: bool) -> list[dict]:
    def gen():
        for n in lengths:
            yield {"targets": np.ones(n, np.int32), "loss_mask": np.full(n, 2, np.int32)}

    spec = {k: tf.TensorSpec([None], tf.int32) for k in ("targets", "loss_mask")}
    ds = tf.data.Dataset.from_generator(gen, output_signature=spec)
    lengths_map = {"targets": length, "loss_mask": length}
    if ours:
        ds = packing.best_fit_pack_dataset(ds, lengths_map)
    else:
        ds = seqio.utils.trim_and_pack_dataset(ds, lengths_map)
    return list(ds.as_numpy_iterator())


def oasst_like_task(n: int = 2000) -> str:
    """A chat task whose conversations have OASST-like token lengths (demo sentences repeated)."""
    import tasks

    sentences = [
        m["content"] for r in tasks.demo.DEMO.records("train", "en") for m in r["messages"]
    ]
    rng = np.random.default_rng(1)
    records = []
    for i, tokens in enumerate(oasst_like_lengths(n)):
        words = " ".join(rng.choice(sentences, size=max(2, tokens // 8)))
        half = len(words) // 4
        records.append(
            {
                "id": str(i),
                "lang": "en",
                "messages": [
                    {"role": "user", "content": words[:half]},
                    {"role": "assistant", "content": words[half:]},
                ],
            }
        )
    chat_tasks.add_chat_task(
        "bench_oasst_like", lambda split: records, ["train"], tasks.demo.VOCABULARY
    )
    return "bench_oasst_like"


def pipeline_tokens_per_second(batch: int = 16, length: int = 2048) -> tuple[float, float]:
    """Tokens/s of the first pass (render + tokenize + pack) and of later passes (cached)."""
    batches = pipeline.train_batches(oasst_like_task(), {"targets": length}, batch, seed=0)
    rates = []
    for steps in (20, 100):  # 20 batches stay within the first pass over ~0.9M tokens
        start, tokens = time.perf_counter(), 0
        for _ in range(steps):
            tokens += int(next(batches)["decoder_loss_weights"].size)
        rates.append(tokens / (time.perf_counter() - start))
    return rates[0], rates[1]


def tiny_step_tokens_per_second(batch: int = 16, length: int = 512) -> float:
    import jax

    from polyglot_jax.models import Decoder, DecoderConfig
    from polyglot_jax.training import optimizers, partitioning, trainer

    steps = trainer.ShardedSteps(
        Decoder(DecoderConfig(max_length=length)),
        optimizers.make_optimizer(),
        partitioning.create_mesh(),
        partitioning.standard_logical_axis_rules(),
        length,
    )
    state = steps.init(0)
    t = np.random.default_rng(0).integers(1, 1000, (batch, length)).astype(np.int32)
    b = steps.place_batch(
        {
            "decoder_target_tokens": t,
            "decoder_input_tokens": t,
            "decoder_loss_weights": np.ones_like(t),
        }
    )
    state, m = steps.train(state, b)
    jax.block_until_ready(m)
    start = time.perf_counter()
    for _ in range(10):
        state, m = steps.train(state, b)
    jax.block_until_ready(m)
    return 10 * batch * length / (time.perf_counter() - start)


def main() -> None:
    lengths = oasst_like_lengths()
    print("| length | seqio trim_and_pack | ours (best-fit decreasing) | ratio |")
    print("|---|---|---|---|")
    for length in (512, 2048):
        theirs = efficiency(packed_rows(lengths, length, ours=False), length)
        ours = efficiency(packed_rows(lengths, length, ours=True), length)
        print(f"| {length} | {theirs:.3f} | {ours:.3f} | {ours / theirs:.2f} |")
    first, cached = pipeline_tokens_per_second()
    tiny = tiny_step_tokens_per_second()
    one_b = 0.5 * H100_BF16_FLOPS / (6 * 1e9)
    print(
        "\n| consumer | consumes tokens/s | pipeline 1st pass | ratio | pipeline cached | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for name, rate in (("tiny train step, this CPU", tiny), ("1B, 50% MFU, one H100", one_b)):
        print(
            f"| {name} | {rate:,.0f} | {first:,.0f} | {first / rate:.1f} "
            f"| {cached:,.0f} | {cached / rate:.1f} |"
        )


if __name__ == "__main__":
    main()
