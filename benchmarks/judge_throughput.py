"""Judge throughput against a local chat-completions server with a fixed latency.

Judged items per second at a given concurrency versus the bound concurrency / latency, and the
number of requests a full re-run sends (every judgment is cached in SQLite: target 0). One
request before the clock starts warms the client (its lazy imports take ~0.5 s once per
process); client, server and SQLite share this machine's cores.

  python benchmarks/judge_throughput.py --items 400 --latency 0.2 --concurrency 16
"""

from __future__ import annotations

import argparse
import tempfile
import time

from polyglot_jax.clients import backends
from polyglot_jax.evaluation.judges import protocols, runner
from polyglot_jax.evaluation.judges.store import JudgmentStore
from polyglot_jax.testing import mock_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    items = [
        protocols.Item(f"bench/en/{i}", "en", "Question?", "answer " * (i % 30 + 1))
        for i in range(args.items)
    ]
    with (
        mock_server.MockChatServer(latency=args.latency) as server,
        tempfile.TemporaryDirectory() as d,
    ):
        backend = backends.OpenAIBackend("mock", server.base_url, concurrency=args.concurrency)
        store = JudgmentStore(f"{d}/judgments.sqlite")
        protocol = protocols.get_protocol("single")
        backend.complete([{"role": "user", "content": "warm-up"}])
        start = time.perf_counter()
        results = runner.run(protocol, backend, items, store, progress=False)
        seconds = time.perf_counter() - start
        before = server.requests
        runner.run(protocol, backend, items, store, progress=False)
        rerun_requests = server.requests - before
    ok = sum(r["status"] == "ok" for r in results)
    rate, bound = ok / seconds, args.concurrency / args.latency
    print("| items | latency s | concurrency | items/s | bound items/s | ratio | re-run requests |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {ok}/{len(items)} | {args.latency} | {args.concurrency} | {rate:.1f} | {bound:.1f} "
        f"| {rate / bound:.3f} | {rerun_requests} |"
    )


if __name__ == "__main__":
    main()
