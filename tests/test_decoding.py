"""The jitted generation loop against step-by-step greedy decoding without a cache."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from polyglot_jax.models import Decoder
from polyglot_jax.runtime import decoding, next_token


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
    hot = decoding.Sampling(temperature=1.0)
    a = decoding.generate(model, params, prompts, 10, 1, hot, seeds=[0, 1])
    b = decoding.generate(model, params, prompts, 10, 1, hot, seeds=[0, 1])
    c = decoding.generate(model, params, prompts, 10, 1, hot, seeds=[2, 3])
    assert a == b and a != c


def test_bucket_length():
    assert [decoding.bucket_length(n) for n in (1, 16, 17, 40)] == [16, 16, 32, 48]


def _hf_processor(name, *args, **kwargs):
    import transformers

    return getattr(transformers, name)(*args, **kwargs)


def test_top_k_top_p_and_repetition_penalty_match_transformers():
    import torch

    rng = np.random.RandomState(0)
    logits = rng.randn(4, 50).astype(np.float32) * 3
    ids = rng.randint(0, 50, (4, 7))
    for top_k, top_p in [(5, 1.0), (0, 0.8), (10, 0.5), (0, 1.0)]:
        ours = np.asarray(next_token.filter_logits(jnp.asarray(logits), top_k, top_p))
        ref = torch.tensor(logits)
        if top_k:
            ref = _hf_processor("TopKLogitsWarper", top_k)(None, ref)
        if top_p < 1:
            ref = _hf_processor("TopPLogitsWarper", top_p)(None, ref)
        np.testing.assert_array_equal(np.isinf(ours), np.isinf(ref.numpy()))
        kept = ~np.isinf(ours)
        np.testing.assert_array_equal(ours[kept], ref.numpy()[kept])

    seen = np.zeros((4, 50), bool)
    np.put_along_axis(seen, ids, True, axis=1)
    ours = next_token.penalize(jnp.asarray(logits), jnp.asarray(seen), jnp.zeros((4, 50)), 1.2, 0.0)
    ref = _hf_processor("RepetitionPenaltyLogitsProcessor", 1.2)(
        torch.tensor(ids), torch.tensor(logits)
    )
    np.testing.assert_allclose(np.asarray(ours), ref.numpy(), rtol=1e-6)


def test_frequency_penalty_subtracts_per_occurrence():
    logits = jnp.zeros((1, 4))
    counts = jnp.asarray([[0.0, 1.0, 3.0, 0.0]])
    out = next_token.penalize(logits, jnp.zeros((1, 4), bool), counts, 1.0, 0.2)
    np.testing.assert_allclose(np.asarray(out), [[0.0, -0.2, -0.6, 0.0]], rtol=1e-6)


def test_greedy_with_repetition_penalty_matches_transformers_generate(tmp_path):
    import torch
    import transformers

    from polyglot_jax.models import hf

    config = transformers.LlamaConfig(
        vocab_size=97,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    reference = transformers.LlamaForCausalLM(config).eval()
    reference.save_pretrained(tmp_path)
    cfg, params = hf.load_model_dir(tmp_path)
    model = Decoder(cfg)
    prompts = [[5, 17, 33, 8, 21], [40, 41, 42]]
    sampling = decoding.Sampling(repetition_penalty=1.2)
    ours = decoding.generate(model, params, prompts, 12, eos_id=2, sampling=sampling)
    for prompt, tokens in zip(prompts, ours.tokens, strict=True):
        with torch.no_grad():
            out = reference.generate(
                torch.tensor([prompt]),
                do_sample=False,
                max_new_tokens=12,
                repetition_penalty=1.2,
                eos_token_id=2,
                pad_token_id=0,
            )
        expected = out[0, len(prompt) :].tolist()
        if 2 in expected:
            expected = expected[: expected.index(2)]
        assert tokens == expected


def test_rows_sample_independently_of_their_batch(tiny_config):
    model = Decoder(tiny_config)
    params = nn.unbox(model.init(jax.random.PRNGKey(3), jnp.ones((1, 4), jnp.int32))["params"])
    sampling = decoding.Sampling(temperature=0.9, top_k=20, top_p=0.95, frequency_penalty=0.2)
    both = decoding.generate(model, params, [[5, 6, 7], [8, 9]], 10, 1, sampling, seeds=[11, 12])
    alone = decoding.generate(model, params, [[8, 9]], 10, 1, sampling, seeds=[12])
    assert both.tokens[1] == alone.tokens[0]
    other_seed = decoding.generate(model, params, [[8, 9]], 10, 1, sampling, seeds=[13])
    assert other_seed.tokens != alone.tokens


def test_stop_ids_and_strings():
    assert decoding.cut_at_stop_strings("a b ### c ###", ["###", "\n"]) == ("a b ", True)
    assert decoding.cut_at_stop_strings("plain", ["###"]) == ("plain", False)
    with pytest.raises(ValueError, match=r"Sampling\.top_p"):
        decoding.Sampling(top_p=0.0)


def test_greedy_tokens_equal_argmax_on_ties_infinities_and_nans():
    rng = np.random.RandomState(0)
    logits = rng.randint(-3, 3, (8, 50)).astype(np.float32)  # many ties
    logits[1] = -np.inf
    logits[2, [7, 30]] = np.inf
    logits[3, [4, 9]] = np.nan
    logits[4, 11] = np.nan
    logits[4, 12] = np.inf
    ours = np.asarray(next_token.greedy_tokens(jnp.asarray(logits)))
    np.testing.assert_array_equal(ours, np.asarray(jnp.argmax(jnp.asarray(logits), axis=-1)))
    assert ours.dtype == np.int32 and list(ours[1:5]) == [0, 7, 4, 11]
