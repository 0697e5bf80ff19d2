"""Generation speed: our jitted decode loop vs ``transformers`` ``generate`` on the same model.

A random Llama (``--layers``, ``--hidden``, 32k vocabulary) is built with ``transformers``, saved
as safetensors and loaded into our decoder, so both sides run identical weights in float32.
Greedy decoding, ``--batch`` prompts of ``--prompt`` tokens, exactly ``--new`` new tokens each
(no stop token). Our time excludes compilation (one warm-up call); ``generate`` gets a warm-up
call too. Both sides produce the same tokens (checked). The floor row is the time to read every
weight a decode step touches once per step at the memory bandwidth measured here (a 256 MiB
reduction); with batch 8 a CPU decode step is bound by matmul throughput at M=8, not by reading.

  python benchmarks/generate.py [--batch 8 --new 128 --layers 8 --hidden 512]

With ``--mesh D,F,M`` it compares instead one device with the model placed on a ``(data, fsdp,
model)`` mesh through the model interface (same tokens checked), and counts the collectives the
compiled decode loop runs per step and the bytes they move; simulate devices on CPU with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``.
"""

from __future__ import annotations

import argparse
import re
import time

import jax
import numpy as np
import torch
from random_llama import random_llama

from polyglot_jax.models import Decoder
from polyglot_jax.runtime import decoding, placement
from polyglot_jax.runtime.model import LanguageModel, inference_mesh

_BYTES = {"f32": 4, "bf16": 2, "s32": 4, "u32": 4, "pred": 1, "f16": 2}


def collectives(hlo: str) -> tuple[int, float]:
    """``(count, MiB)`` of the all-gather / all-reduce / all-to-all / collective-permute ops
    in a compiled module (each result's size; ops in the loop body run once per step)."""
    pattern = r"= (\w+)\[([\d,]*)\][^=]*? (all-gather|all-reduce|all-to-all|collective-permute)\("
    count, size = 0, 0.0
    for dtype, dims, _ in re.findall(pattern, hlo):
        count += 1
        size += _BYTES.get(dtype, 4) * float(np.prod([int(d) for d in dims.split(",") if d]))
    return count, size / 2**20


def compare_mesh(args: argparse.Namespace, model: Decoder, params, prompts: np.ndarray) -> None:
    """One device against the model on ``--mesh``: seconds per new token and collectives."""
    mesh = inference_mesh([int(x) for x in args.mesh.split(",")])
    single = LanguageModel(model, params)
    sharded = LanguageModel.place(model, params, mesh)
    no_stop = model.config.vocab_size
    rows = []
    for name, lm in (("1 device", single), (f"mesh {args.mesh}", sharded)):
        lm.generate(prompts.tolist(), args.new, no_stop)  # compile
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = lm.generate(prompts.tolist(), args.new, no_stop)
            times.append(time.perf_counter() - start)
        rows.append((name, min(times), out.tokens))
    same = rows[0][2] == rows[1][2]
    # The compiled sharded loop: collectives inside the while body run once per decode step.
    hlo = _sharded_hlo(sharded, prompts, args.new)
    count, mib = collectives(hlo)
    print(
        f"{jax.device_count()} {jax.devices()[0].platform} devices, batch {args.batch}, prompt "
        f"{args.prompt}, {args.new} new tokens, greedy; identical tokens: {same}"
    )
    print("| placement | seconds | ms per step | new tokens/s |")
    print("|---|---|---|---|")
    for name, seconds, _ in rows:
        per_step = 1000 * seconds / args.new
        print(
            f"| {name} | {seconds:.2f} | {per_step:.1f} | {args.batch * args.new / seconds:,.0f} |"
        )
    print(f"collectives in the compiled sharded program: {count} ops, {mib:.2f} MiB of results")
    gather_ms = 1000 * all_gather_seconds(sharded, args.repeats)
    extra_ms = 1000 * (rows[1][1] - rows[0][1]) / args.new
    print(
        f"all-gather of every parameter (what an fsdp step gathers): {gather_ms:.1f} ms; "
        f"mesh step minus one-device step: {extra_ms:.1f} ms "
        f"({extra_ms / max(gather_ms, 1e-9):.2f}x the all-gather)"
    )


def all_gather_seconds(lm: LanguageModel, repeats: int) -> float:
    """Seconds to gather every sharded parameter onto every device (the best of ``repeats``)."""
    replicated = jax.sharding.NamedSharding(lm.mesh, jax.sharding.PartitionSpec())
    gather = jax.jit(
        lambda params: jax.tree.map(lambda x: x + 0, params),
        out_shardings=jax.tree.map(lambda _: replicated, lm.params),
    )
    jax.block_until_ready(gather(lm.params))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(gather(lm.params))
        times.append(time.perf_counter() - start)
    return min(times)


def _sharded_hlo(lm: LanguageModel, prompts: np.ndarray, new: int) -> str:
    rows, width = prompts.shape
    padded = np.zeros((rows, decoding.bucket_length(width)), np.int32)
    padded[:, :width] = prompts
    lengths = np.full((rows,), width, np.int32)
    keys = np.zeros((rows, 2), np.uint32)
    knobs = {
        "temperature": np.float32(1e-6),
        "top_k": np.int32(0),
        "top_p": np.float32(1),
        "repetition_penalty": np.float32(1),
        "frequency_penalty": np.float32(0),
    }
    static = dict(max_new_tokens=new, ngram=0, greedy=True, penalties=False)
    fn = placement._jitted(
        decoding._generate,
        lm.decoder,
        lm.mesh,
        lm.rules,
        (2, 1, 2),
        2,
        2,
        tuple(sorted(static.items())),
    )
    stops = np.asarray([lm.decoder.config.vocab_size], np.int32)
    with lm.context():
        return fn.lower(lm.params, padded, lengths, keys, knobs, stops).compile().as_text()


def read_bandwidth(mib: int = 256) -> float:
    """Bytes per second of a jitted sum over ``mib`` MiB of float32."""
    data = jax.numpy.ones((mib * 2**18,), jax.numpy.float32)
    total = jax.jit(lambda a: a.sum())
    total(data).block_until_ready()
    start = time.perf_counter()
    for _ in range(10):
        result = total(data)
    result.block_until_ready()
    return mib * 2**20 * 10 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mesh", help="D,F,M: compare one device with this mesh instead")
    args = parser.parse_args()

    reference, cfg, params = random_llama(args.layers, args.hidden, args.prompt + args.new)
    reference.eval()
    model = Decoder(cfg)
    prompts = np.random.RandomState(0).randint(3, 32000, (args.batch, args.prompt))
    no_stop = cfg.vocab_size  # an id the model never emits
    if args.mesh:
        compare_mesh(args, model, params, prompts)
        return

    def ours() -> np.ndarray:
        out = decoding.generate(model, params, prompts.tolist(), args.new, no_stop)
        return np.asarray(out.tokens)

    def theirs() -> np.ndarray:
        with torch.no_grad():
            out = reference.generate(
                torch.tensor(prompts),
                do_sample=False,
                max_new_tokens=args.new,
                min_new_tokens=args.new,
                eos_token_id=None,
                pad_token_id=0,
            )
        return out[:, args.prompt :].numpy()

    def best_time(fn) -> tuple[float, np.ndarray]:
        result = fn()  # warm-up (compiles ours)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        return min(times), result

    t_ours, tokens_ours = best_time(ours)
    t_hf, tokens_hf = best_time(theirs)
    same = float((tokens_ours == tokens_hf).mean())
    new_tokens = args.batch * args.new
    params_m = sum(x.size for x in jax.tree.leaves(params)) / 1e6
    step_bytes = 4 * (params_m * 1e6 - cfg.vocab_size * cfg.embed_dim * (not cfg.tie_embeddings))
    t_floor = args.new * step_bytes / read_bandwidth()
    print(
        f"Llama {args.layers} layers x {args.hidden}, {params_m:.1f}M params, fp32, greedy, "
        f"batch {args.batch}, prompt {args.prompt}, {args.new} new tokens, "
        f"{jax.device_count()} {jax.devices()[0].platform} device(s), torch threads "
        f"{torch.get_num_threads()}; identical tokens: {same:.1%}"
    )
    print("| implementation | seconds | new tokens/s | speed-up over transformers |")
    print("|---|---|---|---|")
    for name, seconds in [
        ("transformers generate", t_hf),
        ("polyglot_jax decoding", t_ours),
        ("bandwidth floor", t_floor),
    ]:
        print(f"| {name} | {seconds:.2f} | {new_tokens / seconds:,.0f} | {t_hf / seconds:.2f} |")


if __name__ == "__main__":
    main()
