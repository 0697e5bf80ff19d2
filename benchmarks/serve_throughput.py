"""Serving throughput: concurrent OpenAI clients of ``polyglot-jax serve`` vs offline ``infer``.

A random decoder on the demo vocabulary (``--layers``, ``--hidden``) answers ``--requests``
held-out demo prompts (all 12 languages) with greedy decoding and up to ``--max_tokens`` new
tokens (``--stop_early``: the random model's own answer lengths; by default its end token is
never the most likely one, so every answer runs to ``--max_tokens``). Offline: ``infer``'s own
loop (:func:`infer.generate_records`, batches of ``--max_batch``). Served: the same prompts as
chat requests from ``--clients`` threads with the official ``openai`` client, through HTTP and
the continuous-batching engine, whose slots hold ``--max_model_len`` tokens (attention reads all
of them each step). Both produce the same answers (checked); both are timed on a second pass,
after compilation (the engine compiles every shape before it serves). The goal is served
tokens/s >= 0.8 of offline.

  python benchmarks/serve_throughput.py [--requests 64 --clients 16 --layers 4 --hidden 256]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import tempfile
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import openai

import tasks.demo
from polyglot_jax.inference import infer
from polyglot_jax.models import Decoder, DecoderConfig
from polyglot_jax.runtime.chat_model import ChatModel
from polyglot_jax.serving import app, engine, service


def prompts(count: int) -> list[dict]:
    """``count`` held-out demo prompts, round-robin over the languages."""
    by_lang = [tasks.demo.DEMO.records("validation", lang) for lang in tasks.demo.DEMO.languages]
    mixed = [r for group in zip(*by_lang, strict=False) for r in group]
    return [{**r, "messages": r["messages"][:-1]} for r in mixed[:count]]


def offline(lm: ChatModel, records: list[dict], args: argparse.Namespace) -> tuple[float, dict]:
    """Seconds for ``infer``'s loop over ``records`` and its answers by id."""
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "answers.jsonl"
        start = time.perf_counter()
        infer.generate_records(lm, records, out, args.max_batch, args.max_tokens)
        seconds = time.perf_counter() - start
        lines = [json.loads(line) for line in out.read_text().splitlines()]
    return seconds, {(line["id"], line["lang"]): line for line in lines}


def served(url: str, records: list[dict], args: argparse.Namespace) -> tuple[float, list, dict]:
    """Seconds for all requests from ``--clients`` threads, each request's latency, answers."""
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)

    def ask(record: dict) -> tuple[float, str, int]:
        start = time.perf_counter()
        answer = client.chat.completions.create(
            model="bench", messages=record["messages"], temperature=0, max_tokens=args.max_tokens
        )
        content = answer.choices[0].message.content
        return time.perf_counter() - start, content, answer.usage.completion_tokens

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
        results = list(pool.map(ask, records))
    seconds = time.perf_counter() - start
    answers = {
        (r["id"], r["lang"]): (text, n) for r, (_, text, n) in zip(records, results, strict=True)
    }
    return seconds, [latency for latency, _, _ in results], answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max_batch", type=int, default=16)
    parser.add_argument("--max_tokens", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--max_model_len", type=int, default=128)
    parser.add_argument("--stop_early", action="store_true", help="keep the end token's logits")
    args = parser.parse_args()

    config = DecoderConfig(
        vocab_size=tasks.demo.VOCABULARY.vocab_size,
        embed_dim=args.hidden,
        num_layers=args.layers,
        num_heads=args.hidden // 64,
        num_kv_heads=args.hidden // 64,
        head_dim=64,
        mlp_dim=args.hidden * 4,
        max_length=512,
    )
    decoder = Decoder(config)
    params = nn.unbox(decoder.init(jax.random.PRNGKey(0), jnp.ones((1, 8), jnp.int32)))["params"]
    if not args.stop_early:  # the end token's logit is 0, far below the best of the others
        eos = tasks.demo.VOCABULARY.eos_id
        params["lm_head"]["kernel"] = params["lm_head"]["kernel"].at[:, eos].set(0.0)
    lm = ChatModel(decoder, params, tasks.demo.VOCABULARY)
    records = prompts(args.requests)

    offline(lm, records, args)  # compile
    offline_s, expected = offline(lm, records, args)
    batcher = engine.Engine(
        lm,
        args.max_batch,
        max_length=args.max_model_len,
        warm_up_width=args.max_model_len - args.max_tokens,
    )
    batcher.ready.wait()
    served_model = service.Served(batcher, "bench", args.max_model_len)
    with app.ServerThread(served_model) as server:
        for _ in range(args.warmup):
            print("warm-up pass", served(server.url, records, args)[0])
        served_s, latencies, answers = served(server.url, records, args)
        steps = batcher.stats["steps"] / (args.warmup + 1)
    for record_id, (text, n) in answers.items():
        assert text.strip() == expected[record_id]["response"], record_id
        assert n == expected[record_id]["num_tokens"], record_id
    tokens = sum(line["num_tokens"] for line in expected.values())
    p50, p95 = np.percentile(latencies, [50, 95])
    print(
        f"{args.requests} requests, {args.clients} clients, {tokens} new tokens, "
        f"{args.layers} layers x {args.hidden}, {jax.devices()[0].platform}; same answers"
    )
    print("| path | seconds | tokens/s | ratio | p50 latency | p95 latency | decode steps |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| offline infer | {offline_s:.2f} | {tokens / offline_s:.0f} | 1.00 | - | - | "
        f"{-(-args.requests // args.max_batch) * args.max_tokens} (at most) |"
    )
    print(
        f"| served, {args.clients} clients | {served_s:.2f} | {tokens / served_s:.0f} | "
        f"{offline_s / served_s:.2f} | {p50:.2f} s | {p95:.2f} s | {steps:.0f} |"
    )


if __name__ == "__main__":
    main()
