"""The jitted generation loop against step-by-step greedy decoding without a cache."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from polyglot_jax import decoding
from polyglot_jax.models import Decoder


def reference_greedy(model, params, prompt, max_new, eos, width=32):
    """Greedy decoding by full forward passes, no cache (causal, so right padding is inert)."""
    forward = jax.jit(lambda p, t: model.apply({"params": p}, t)[0])
    tokens = list(prompt)
    out = []
    for _ in range(max_new):
        padded = jnp.asarray([tokens + [0] * (width - len(tokens))])
        token = int(jnp.argmax(forward(params, padded)[0, len(tokens) - 1]))
        if token == eos:
            return out, "eos"
        out.append(token)
        tokens.append(token)
    return out, "length"


def test_greedy_batch_matches_reference_for_ragged_prompts(tiny_config):
    model = Decoder(tiny_config)
    params = nn.unbox(model.init(jax.random.PRNGKey(1), jnp.ones((1, 4), jnp.int32))["params"])
    rng = np.random.RandomState(0)
    prompts = [rng.randint(2, 64, n).tolist() for n in (3, 11, 7, 17)]
    # Pick as EOS a token the model emits for one prompt, so both finish reasons occur.
    eos = reference_greedy(model, params, prompts[1], 5, eos=-1)[0][2]
    got = decoding.generate(model, params, prompts, max_new_tokens=12, eos_id=eos)
    for prompt, tokens, reason in zip(prompts, got.tokens, got.finish_reasons, strict=True):
        assert (tokens, reason) == reference_greedy(model, params, prompt, 12, eos)
    assert set(got.finish_reasons) == {"eos", "length"}


def test_sampling_is_seeded(tiny_config):
    model = Decoder(tiny_config)
    params = nn.unbox(model.init(jax.random.PRNGKey(2), jnp.ones((1, 4), jnp.int32))["params"])
    prompts = [[5, 6, 7], [8, 9]]
    a = decoding.generate(model, params, prompts, 10, eos_id=1, temperature=1.0, seed=0)
    b = decoding.generate(model, params, prompts, 10, eos_id=1, temperature=1.0, seed=0)
    c = decoding.generate(model, params, prompts, 10, eos_id=1, temperature=1.0, seed=1)
    assert a == b and a != c


def test_bucket_length():
    assert [decoding.bucket_length(n) for n in (1, 16, 17, 40)] == [16, 16, 32, 48]
