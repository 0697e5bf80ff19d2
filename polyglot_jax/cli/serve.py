"""``polyglot-jax serve``: a tuned model behind the OpenAI protocol.

  polyglot-jax serve --checkpoint_path=/ckpt/pinch40 [--host 127.0.0.1 --port 8000]

Serves ``/v1/chat/completions`` (the run's chat template), ``/v1/completions`` (``echo`` and
``logprobs``, as lm-evaluation-harness's ``local-completions`` needs), ``/v1/models`` and
``/health``, for a run directory, one of its ``checkpoint_<step>`` folders or a Hugging Face model
folder, placed on a mesh over every device. Concurrent requests share decode steps (continuous
batching). Binds 127.0.0.1 unless told otherwise; when ``$POLYGLOT_JAX_API_KEY`` (or the
variable named by ``--api_key_env``) is set, clients must send it as a bearer token. SIGTERM
answers the requests in flight, then exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from polyglot_jax import gin_utils, storage
from polyglot_jax.cli import common
from polyglot_jax.errors import ConfigError

log = logging.getLogger(__name__)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line of ``polyglot-jax serve``."""
    parser = gin_utils.ArgumentParser(prog="polyglot-jax serve", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint_path", required=True, help="run, checkpoint or HF dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    parser.add_argument("--served_model_name", help="the model name (default: the folder's)")
    parser.add_argument(
        "--mixture", help="task or mixture giving the vocabulary of a run that records none"
    )
    parser.add_argument("--module", action="append", default=["tasks"])
    parser.add_argument("--mesh_shape", default="1,-1,1", help="data,fsdp,model (-1 fills)")
    common.add_load_arguments(parser)
    parser.add_argument("--max_batch", type=int, default=16, help="rows decoded together")
    parser.add_argument("--max_queue", type=int, default=256, help="requests waiting, then 429")
    parser.add_argument(
        "--max_model_len", type=int, help="tokens per row, prompt and answer (default: context)"
    )
    parser.add_argument(
        "--warm_up_width",
        type=int,
        default=0,
        help="compile every shape for prompts up to this many tokens before serving",
    )
    parser.add_argument("--default_max_tokens", type=int, default=256)
    parser.add_argument("--drain_timeout", type=float, default=60.0, help="seconds on SIGTERM")
    parser.add_argument(
        "--request_timeout",
        type=float,
        default=60.0,
        help="seconds for a request (headers and body) to arrive, then 408",
    )
    parser.add_argument(
        "--max_body_bytes", type=int, default=16 * 2**20, help="larger bodies get 413"
    )
    parser.add_argument("--api_key_env", default="POLYGLOT_JAX_API_KEY")
    args = parser.parse_args(argv)
    for name in ("max_batch", "max_queue", "default_max_tokens", "max_body_bytes"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    if args.max_model_len is not None and args.max_model_len < 2:
        raise ConfigError(f"--max_model_len must be at least 2, got {args.max_model_len}")
    if args.warm_up_width < 0:
        raise ConfigError(f"--warm_up_width must be >= 0, got {args.warm_up_width}")
    if not args.request_timeout > 0:
        raise ConfigError(f"--request_timeout must be > 0, got {args.request_timeout}")
    if args.drain_timeout < 0:
        raise ConfigError(f"--drain_timeout must be >= 0, got {args.drain_timeout}")
    if not 0 <= args.port < 65536:
        raise ConfigError(f"--port must be in 0..65535, got {args.port}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Loads the model and serves until SIGTERM or SIGINT."""
    args = parse(sys.argv[1:] if argv is None else argv)
    import jax

    from polyglot_jax.runtime.chat_model import ChatModel
    from polyglot_jax.runtime.model import inference_mesh
    from polyglot_jax.serving import app, engine, service

    if jax.process_count() > 1:
        raise ConfigError("serve runs in one process (its mesh may span that host's devices)")
    for module in args.module:
        common.import_tasks(module)
    sock = app.bind(args.host, args.port)  # a port in use fails before the model loads
    model = ChatModel.load(
        args.checkpoint_path,
        inference_mesh(common.mesh_shape(args.mesh_shape)),
        mixture_or_task_name=args.mixture,
        dtype=args.dtype,
        quantization=args.quantization,
    )
    positions = model.decoder.config.max_length
    if args.max_model_len is not None and args.max_model_len > positions:
        raise ConfigError(
            f"--max_model_len {args.max_model_len} is longer than the model's {positions} "
            "positions; leave it out or give at most that"
        )
    batcher = engine.Engine(
        model,
        max_batch=args.max_batch,
        max_queue=args.max_queue,
        max_length=args.max_model_len,
        warm_up_width=args.warm_up_width,
    )
    name = args.served_model_name or storage.as_path(args.checkpoint_path).name
    served = service.Served(
        batcher,
        name,
        batcher.max_length,
        args.default_max_tokens,
        os.environ.get(args.api_key_env) or None,
        args.max_body_bytes,
    )
    batcher.ready.wait()
    host, port = sock.getsockname()[:2]
    print(f"serving {name} on http://{host}:{port}/v1", flush=True)
    app.serve(served, sock, args.drain_timeout, args.request_timeout)
    stats = batcher.stats
    print(f"served {stats['jobs']} requests, {stats['tokens']} tokens in {stats['steps']} steps")
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
