"""Accelerator speed: training MFU per attention kernel, decode steps against the HBM floor.

One command on a GPU or TPU host; it names the device and prints two tables:

* training: a ~1.1B Llama (TinyLlama's shape: 22 layers, width 2048, 32 heads, 4 kv heads,
  32k vocabulary) in bfloat16 compute with float32 master weights and AdamW, ``--batch`` x
  ``--length`` tokens per step, full remat, scanned layers, chunked loss, once per attention
  kernel (``xla`` and the backend's fused one: ``cudnn`` on GPU, ``splash`` on TPU), and
  ``transformers`` + PyTorch (sdpa attention, bf16 autocast) on the same device when PyTorch
  sees it. MFU = tokens/s x (6 x parameters + 12 x layers x width x length) / peak bf16 FLOP/s
  of the device (a table of data-sheet dense numbers, else a measured bf16 matmul). A Llama 2
  7B row with rank-16 LoRA on every projection follows where memory allows (its frozen weights
  count 4 FLOPs per parameter: forward and input gradients).
* decoding: one greedy step (bf16 weights, ``--context`` tokens filled in a cache of
  ``--cache`` slots) at batch 1 and 32, with the dense and the ragged decode attention and with
  int8 kernels, for TinyLlama's and Llama 2 7B's shapes, against the floor of reading every
  bf16 weight and the filled cache once per step at the device's HBM bandwidth (data sheet,
  else a measured copy).
* serving: ``serve_throughput.py`` with 64 concurrent OpenAI clients against offline ``infer``
  on the same device (``--skip_serving`` leaves it out).

Without an accelerator it says so and exits 0.

  python benchmarks/accelerator.py [--batch 8 --length 2048 --steps 10 --context 1024]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

# device kind substring: (dense bf16 FLOP/s, HBM bytes/s), from the vendors' data sheets.
DEVICES = {
    "H200": (989e12, 4.8e12),
    "H100": (989e12, 3.35e12),
    "A100": (312e12, 2.0e12),
    "L4": (121e12, 0.3e12),
    "TPU v6": (918e12, 1.64e12),
    "TPU v5p": (459e12, 2.76e12),
    "TPU v5 lite": (197e12, 0.82e12),
    "TPU v5e": (197e12, 0.82e12),
    "TPU v4": (275e12, 1.2e12),
}
BACKEND_KERNEL = {"gpu": "cudnn", "tpu": "splash"}
VOCAB = 32000


def accelerator() -> jax.Device | None:
    """The first GPU or TPU device, or None on a host without one."""
    if jax.default_backend() not in BACKEND_KERNEL:
        return None
    return jax.devices()[0]


def device_rates(device: jax.Device) -> tuple[float, float, str]:
    """``(peak bf16 FLOP/s, HBM bytes/s, where they come from)`` for ``device``."""
    for name, (flops, bandwidth) in DEVICES.items():
        if name.lower() in device.device_kind.lower():
            return flops, bandwidth, "data sheet"
    return measured_flops(), measured_bandwidth(), "measured"


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Mean seconds of ``fn`` after one warm-up call; ``fn`` returns something to block on."""
    jax.block_until_ready(fn())
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn()
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeats


def measured_flops(size: int = 8192) -> float:
    a = jnp.ones((size, size), jnp.bfloat16)
    f = jax.jit(lambda x: x @ x)
    return 2 * size**3 / timed(lambda: f(a), 10)


def measured_bandwidth(mib: int = 1024) -> float:
    a = jnp.ones((mib * 2**18,), jnp.float32)
    f = jax.jit(lambda x: x + 1)
    return 2 * mib * 2**20 / timed(lambda: f(a), 10)  # read and write


def llama_1b(**changes: object) -> object:
    """TinyLlama-1.1B's shape as a :class:`DecoderConfig`."""
    from polyglot_jax.models import DecoderConfig

    fields = dict(
        vocab_size=VOCAB,
        embed_dim=2048,
        num_layers=22,
        num_heads=32,
        num_kv_heads=4,
        head_dim=64,
        mlp_dim=5632,
        dtype="bfloat16",
        param_dtype="float32",
        remat="full",
        scan_layers=True,
        loss_chunk=8000,
        max_length=4096,
    )
    return DecoderConfig(**{**fields, **changes})


def llama_7b(**changes: object) -> object:
    """Llama 2 7B's shape (32 layers, width 4096, 32 heads, MLP 11008) for the decode rows."""
    fields = dict(embed_dim=4096, num_layers=32, num_heads=32, num_kv_heads=32, head_dim=128)
    return llama_1b(**{**fields, "mlp_dim": 11008, **changes})


SHAPES = {"1b": llama_1b, "7b": llama_7b}


def flops_per_token(params: int, cfg: object, length: int) -> float:
    return 6 * params + 12 * cfg.num_layers * cfg.embed_dim * length


def train_ours(
    impl: str, args: argparse.Namespace, shape: str = "1b", lora_rank: int = 0
) -> tuple[float, int]:
    """``(seconds per step, parameters)`` of our train step with ``attention_impl=impl``;
    with ``lora_rank``, rank-r adapters on every projection of the frozen model."""
    import optax

    from polyglot_jax.models import Decoder, LoRAConfig
    from polyglot_jax.training import partitioning, trainer

    cfg = SHAPES[shape](attention_impl=impl)
    if lora_rank:
        targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
        cfg = cfg.replace(lora=LoRAConfig(targets=targets, rank=lora_rank, alpha=2.0 * lora_rank))
    steps = trainer.ShardedSteps(
        Decoder(cfg),
        optax.adamw(1e-4, b1=0.9, b2=0.95, weight_decay=0.0),
        partitioning.create_mesh(1, 1, 1, devices=jax.devices()[:1]),
        partitioning.standard_logical_axis_rules(),
        args.length,
    )
    state = steps.init(0)
    rng = np.random.RandomState(0)
    tokens = rng.randint(1, VOCAB, (args.batch, args.length + 1)).astype(np.int32)
    batch = steps.place_batch(
        {
            "decoder_input_tokens": tokens[:, :-1],
            "decoder_target_tokens": tokens[:, 1:],
            "decoder_loss_weights": np.ones((args.batch, args.length), np.float32),
        }
    )
    holder = {"state": state}

    def step() -> jax.Array:
        holder["state"], metrics = steps.train(holder["state"], batch)
        return metrics["loss"]

    seconds = timed(step, args.steps)
    params = sum(x.size for x in jax.tree.leaves(holder["state"].params))
    return seconds, params


def torch_device() -> object | None:
    """A CUDA device for the ``transformers`` reference, or None (TPU hosts, no PyTorch)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.device("cuda") if torch.cuda.is_available() else None


def hf_llama(device: object) -> object:
    import torch
    import transformers

    cfg = llama_1b()
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=cfg.embed_dim,
        intermediate_size=cfg.mlp_dim,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_length,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).to(device)


def train_hf(device: object, args: argparse.Namespace) -> float:
    """Seconds per train step of ``transformers`` + PyTorch (bf16 autocast, AdamW)."""
    import torch

    model = hf_llama(device)
    model.gradient_checkpointing_enable()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=True)
    ids = torch.randint(1, VOCAB, (args.batch, args.length), device=device)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / args.steps
    torch.cuda.empty_cache()
    return seconds


def decode_ours(
    batch: int,
    context: int,
    cache: int,
    repeats: int,
    attention: str,
    quantization: str,
    shape: str = "1b",
) -> tuple[float, float]:
    """``(seconds per greedy step, bytes a step must read)``: bf16 weights (int8 kernels with
    ``quantization="int8"``), ``context`` tokens filled in a cache of ``cache`` slots, read by
    the ``attention`` decode path (``dense`` reads every slot, ``ragged`` the filled ones)."""
    import flax.linen as nn

    from polyglot_jax.models import Decoder, init_cache
    from polyglot_jax.runtime import quantization as quant

    cfg = SHAPES[shape](param_dtype="bfloat16", remat="none", max_length=cache)
    cfg = cfg.replace(decode_attention=attention)
    model = Decoder(cfg)
    init = jax.jit(lambda rng: nn.unbox(model.init(rng, jnp.ones((1, 8), jnp.int32))["params"]))
    params = init(jax.random.PRNGKey(0))
    model, params = quant.quantize(model, params, quantization)
    kv = init_cache(model.config, batch, cache)  # int8 unrolls scanned layers

    @jax.jit
    def step(params: object, kv: object, token: jax.Array) -> tuple:
        positions = jnp.full((batch, 1), context, jnp.int32)
        logits, kv = model.apply({"params": params}, token, positions, None, kv)
        return jnp.argmax(logits[:, -1], -1)[:, None].astype(jnp.int32), kv

    token = jnp.ones((batch, 1), jnp.int32)
    seconds = timed(lambda: step(params, kv, token)[0], repeats)
    weight_bytes = quant.weight_bytes(params)
    cache_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(kv))
    # The embedding table is read one row per token, not whole; the floor reads the filled
    # part of the cache only.
    weight_bytes -= cfg.vocab_size * cfg.embed_dim * 2
    return seconds, weight_bytes + cache_bytes * (context + 1) / cache


def decode_hf(device: object, batch: int, context: int, new: int) -> float:
    """Seconds per new token of ``transformers`` ``generate`` (bf16, greedy, no stop)."""
    import torch

    model = hf_llama(device).to(torch.bfloat16).eval()
    ids = torch.randint(1, VOCAB, (batch, context), device=device)
    kwargs = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        model.generate(ids, max_new_tokens=2, min_new_tokens=2, do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        start = time.perf_counter()
        model.generate(ids, **kwargs)
        torch.cuda.synchronize()
        total = time.perf_counter() - start
        start = time.perf_counter()
        model.generate(ids, max_new_tokens=1, min_new_tokens=1, do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        prefill = time.perf_counter() - start
    del model
    torch.cuda.empty_cache()
    return (total - prefill) / (new - 1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--cache", type=int, default=4096, help="KV cache slots per row")
    parser.add_argument("--new", type=int, default=64, help="tokens per generate (reference)")
    parser.add_argument("--skip_reference", action="store_true", help="no transformers rows")
    parser.add_argument("--decode_shapes", default="1b,7b", help="decode rows: 1b and/or 7b")
    parser.add_argument(
        "--lora_7b", action=argparse.BooleanOptionalAction, default=True, help="a 7B LoRA row"
    )
    parser.add_argument("--skip_serving", action="store_true", help="no served vs offline table")
    args = parser.parse_args(argv)

    device = accelerator()
    if device is None:
        print(
            f"no accelerator: JAX's backend is {jax.default_backend()} "
            f"({jax.devices()[0].device_kind}); this benchmark needs a GPU or TPU, nothing measured"
        )
        return 0
    peak, bandwidth, source = device_rates(device)
    kernel = BACKEND_KERNEL[jax.default_backend()]
    reference = None if args.skip_reference else torch_device()
    print(
        f"device: {device.device_kind} ({jax.default_backend()}, {jax.device_count()} device(s), "
        f"one used); peak bf16 {peak / 1e12:.0f} TFLOP/s, HBM {bandwidth / 1e12:.2f} TB/s "
        f"({source}); JAX {jax.__version__}\n"
    )
    print(f"training: ~1.1B Llama, bf16, AdamW, batch {args.batch} x {args.length}, full remat\n")
    print("| implementation | s/step | tokens/s | MFU |")
    print("|---|---|---|---|")
    tokens = args.batch * args.length
    params = 0
    for impl in ("xla", kernel):
        seconds, params = train_ours(impl, args)
        rate = tokens / seconds
        mfu = rate * flops_per_token(params, llama_1b(), args.length) / peak
        print(f"| polyglot_jax attention_impl={impl} | {seconds:.3f} | {rate:,.0f} | {mfu:.1%} |")
        sys.stdout.flush()
    if args.lora_7b:
        try:
            seconds, params = train_ours(kernel, args, "7b", lora_rank=16)
        except jax.errors.JaxRuntimeError as e:  # "where memory allows"
            if "RESOURCE_EXHAUSTED" not in str(e):
                raise
            print(f"| 7b LoRA r=16 attention_impl={kernel} | n/a: out of device memory | | |")
        else:
            rate = tokens / seconds  # frozen base: forward and input gradients, 4 FLOPs/param
            mfu = rate * (flops_per_token(params, llama_7b(), args.length) - 2 * params) / peak
            print(
                f"| 7b LoRA r=16 attention_impl={kernel} | {seconds:.3f} | {rate:,.0f} "
                f"| {mfu:.1%} |"
            )
    if reference is not None:
        seconds = train_hf(reference, args)
        rate = tokens / seconds
        mfu = rate * flops_per_token(params, llama_1b(), args.length) / peak
        print(f"| transformers + PyTorch (sdpa) | {seconds:.3f} | {rate:,.0f} | {mfu:.1%} |")
    else:
        print("| transformers + PyTorch | n/a: PyTorch sees no CUDA device | | |")

    print(
        f"\ndecoding: one greedy step, bf16 weights, {args.context} tokens filled in a KV "
        f"cache of {args.cache} slots; the floor reads the weights and the filled cache once\n"
    )
    print("| batch | implementation | ms/step | floor ms (bf16 bytes / HBM) | x floor |")
    print("|---|---|---|---|---|")
    rows = (("dense", "none"), ("ragged", "none"), ("ragged", "int8"))
    for shape, batch in [(s, b) for s in args.decode_shapes.split(",") for b in (1, 32)]:
        floor = 0.0
        for attention, quantization in rows:
            seconds, read = decode_ours(
                batch, args.context, args.cache, args.steps * 5, attention, quantization, shape
            )
            floor = read / bandwidth if quantization == "none" else floor
            name = f"{shape} polyglot_jax {attention}"
            name += ", int8 kernels" if quantization != "none" else ""
            print(
                f"| {batch} | {name} | {seconds * 1e3:.2f} | {floor * 1e3:.2f} "
                f"| {seconds / floor:.2f} |"
            )
            sys.stdout.flush()
        if reference is not None and shape == "1b":
            hf = decode_hf(reference, batch, args.context, args.new)
            print(
                f"| {batch} | transformers generate | {hf * 1e3:.2f} | {floor * 1e3:.2f} "
                f"| {hf / floor:.2f} |"
            )
        sys.stdout.flush()
    if not args.skip_serving:
        serving_table()
    return 0


def serving_table() -> None:
    """Served tokens/s from 64 concurrent clients vs offline ``infer`` on this device: the
    table of ``serve_throughput.py`` with a TinyLlama-wide decoder (goal: ratio >= 0.8)."""
    import pathlib
    import subprocess

    print("\nserving: 256 requests from 64 OpenAI clients vs offline infer, same answers\n")
    script = pathlib.Path(__file__).with_name("serve_throughput.py")
    argv = ["--requests=256", "--clients=64", "--max_batch=64", "--layers=22", "--hidden=2048"]
    subprocess.run([sys.executable, str(script), *argv], check=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
