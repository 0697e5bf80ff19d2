"""Wall time of a quick study grid on N local Ray workers against one process.

The quick study (tiny model, fixture data, the mock judge server; ``--seeds`` multiplies its runs)
is run twice from scratch: in this process (``polyglot-jax study run``), then with
``--cluster=ray`` on a local Ray of N CPU slots (``--cpus_per_run=1``). The table gives both
wall times, the speed-up and the ideal one (N, or the number of runs if fewer). Each Ray worker
starts its own Python, imports JAX and compiles the tiny model again, and the runs share this
machine's cores: on a small machine the speed-up stays well below the ideal.

  python benchmarks/study_parallel.py --workers 2 [--study polyglots] [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import tempfile
import time

from polyglot_jax.studies import catalog, grid, runner
from polyglot_jax.studies.plan import Options
from polyglot_jax.testing import mock_server, study_fixtures


def _run(study: catalog.Study, root: str, data: str, url: str, seeds: tuple, **kw) -> float:
    options = Options(
        root=root,
        quick=True,
        data_dir=data,
        judge=f"openai:mock@{url}",
        benchmarks=False,
        seeds=seeds,
        **kw,
    )
    began = time.perf_counter()
    runner.run(study, options)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="Ray CPU slots (runs at once)")
    parser.add_argument("--study", default="polyglots")
    parser.add_argument("--seeds", default="", help="comma-separated: each quick run per seed")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench")
    import ray

    study = catalog.STUDIES[args.study]
    seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    runs = len(grid.select(study, None, True, seeds))
    with tempfile.TemporaryDirectory() as d, mock_server.MockChatServer() as server:
        study_fixtures.write_fixture_data(f"{d}/data", "quick")
        one = _run(study, f"{d}/one", f"{d}/data", server.base_url, seeds)
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        try:
            many = _run(
                study, f"{d}/ray", f"{d}/data", server.base_url, seeds,
                cluster="ray", cpus_per_run=1,
            )  # fmt: skip
        finally:
            ray.shutdown()
        one_md, ray_md = (pathlib.Path(d, r, "report", "study.md") for r in ("one", "ray"))
        same = one_md.read_text() == ray_md.read_text()
    ideal = min(args.workers, runs)
    print(f"{study.name} quick, {runs} runs, {os.cpu_count()} CPU cores; same report: {same}")
    print("| mode | workers | wall s | speed-up | ideal speed-up |")
    print("|---|---:|---:|---:|---:|")
    print(f"| one process | 1 | {one:.1f} | 1.00x | 1.00x |")
    print(f"| Ray, local | {args.workers} | {many:.1f} | {one / many:.2f}x | {ideal:.2f}x |")
    print(f"ratio to ideal: {one / many / ideal:.2f}")


if __name__ == "__main__":
    main()
