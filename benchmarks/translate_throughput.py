"""Translate throughput against local fake servers (chat and Google v2) with a fixed latency.

Messages per second at a given concurrency versus the bound concurrency / latency, and the
number of requests a full re-run sends (every message is cached in SQLite: target 0). Every
answer goes through the real checks (protected spans, length ratio, lingua); lingua's models
and the HTTP clients are warmed up before the clock starts. Client, servers and SQLite share
this machine's cores.

  python benchmarks/translate_throughput.py --messages 400 --latency 0.2 --concurrency 16
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import tempfile
import time

from polyglot_jax.clients import backends
from polyglot_jax.data import translate, translate_backends
from polyglot_jax.data.translate_text import Checks
from polyglot_jax.evaluation import langid
from polyglot_jax.testing import mock_server, mock_translate

TEXT = (
    "Message {i}: please explain how the function `load()` reads {{path}} and what the "
    "documentation at https://example.com/docs/{i} says about errors."
)


def measure(translator, server, path, output_dir, checks) -> tuple[int, float, int]:
    """``(messages translated, seconds, requests of a full re-run)``."""
    start = time.perf_counter()
    result = translate.translate_file(path, output_dir, ["de"], translator, checks, progress=False)
    seconds = time.perf_counter() - start
    before = server.requests
    translate.translate_file(path, output_dir, ["de"], translator, checks, progress=False)
    return result.stats["de"].translated, seconds, server.requests - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    os.environ["GOOGLE_TRANSLATE_API_KEY"] = "benchmark-key"
    checks = Checks(langid.detect)
    langid.detect(["Das Wetter ist heute sehr schön und wir gehen spazieren."])  # load models
    rows = []
    with (
        mock_server.MockChatServer(latency=args.latency) as chat,
        mock_translate.MockTranslateServer(latency=args.latency) as google,
        tempfile.TemporaryDirectory() as d,
    ):
        path = pathlib.Path(d) / "bench.en.jsonl"
        lines = [
            {
                "id": str(i),
                "lang": "en",
                "messages": [{"role": "user", "content": TEXT.format(i=i)}],
            }
            for i in range(args.messages)
        ]
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        chat_backend = backends.OpenAIBackend("mock", chat.base_url, concurrency=args.concurrency)
        translators = {
            "openai (chat)": (
                translate_backends.ChatTranslator("openai", "mock", chat_backend),
                chat,
            ),
            "google v2": (
                translate_backends.GoogleTranslator(
                    None, google.base_url, concurrency=args.concurrency
                ),
                google,
            ),
        }
        chat_backend.complete([{"role": "user", "content": "warm-up"}])
        translators["google v2"][0].translate(translate_backends.Request("warm-up", "en", "de"))
        for name, (translator, server) in translators.items():
            out = pathlib.Path(d) / name.split()[0]
            rows.append((name, *measure(translator, server, path, out, checks)))
    bound = args.concurrency / args.latency
    print(
        "| backend | messages | latency s | concurrency | messages/s | bound messages/s "
        "| ratio (goal >= 0.9) | re-run requests (goal 0) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, done, seconds, rerun in rows:
        rate = done / seconds
        print(
            f"| {name} | {done}/{args.messages} | {args.latency} | {args.concurrency} "
            f"| {rate:.1f} | {bound:.1f} | {rate / bound:.3f} | {rerun} |"
        )


if __name__ == "__main__":
    main()
