"""LoRA: step 0 is the base model, only adapters train, PEFT and merged exports match."""

import jax
import numpy as np
import peft
import pytest
import torch
import transformers
from flax import traverse_util

from polyglot_jax.errors import ConfigError
from polyglot_jax.models import Decoder, LoRAConfig, hf, lora
from polyglot_jax.training import loop, optimizers, partitioning, trainer
from polyglot_jax.training.config import DataConfig, TrainConfig

TOL = 1e-4
LORA = LoRAConfig(targets=("q_proj", "v_proj", "o_proj", "down_proj"), rank=4, alpha=8.0)


def tiny_llama(tmp_path, vocab=97):
    config = transformers.LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    model.save_pretrained(tmp_path / "base")
    return model, tmp_path / "base"


def steps_for(cfg, seq=16):
    return trainer.ShardedSteps(
        Decoder(cfg),
        optimizers.make_optimizer(learning_rate=1e-2, warmup_steps=1, schedule="constant"),
        partitioning.create_mesh(),
        partitioning.standard_logical_axis_rules(),
        seq,
    )


def logits(cfg, params, ids):
    return np.asarray(Decoder(cfg).apply({"params": params}, ids)[0])


@pytest.fixture()
def adapted(tmp_path):
    model, path = tiny_llama(tmp_path)
    base_cfg, base = hf.load_model_dir(path)
    cfg = base_cfg.replace(lora=LORA)
    state = steps_for(cfg).init_from(0, base)
    return model, base_cfg, base, cfg, state


def test_step_zero_is_the_base_model(adapted):
    _, base_cfg, base, cfg, state = adapted
    ids = np.arange(12)[None] % 97
    np.testing.assert_array_equal(logits(cfg, state.params, ids), logits(base_cfg, base, ids))
    assert lora.count(state.params)[0] == 2 * (  # two layers
        4 * (32 + 4 * 8) + 4 * (32 + 2 * 8) + 4 * (4 * 8 + 32) + 4 * (64 + 32)
    )


def test_only_adapters_train_and_only_they_have_optimizer_state(adapted):
    _, _, _, cfg, state = adapted
    steps = steps_for(cfg)
    adapter_size, total = lora.count(state.params)
    state_size = sum(x.size for x in jax.tree.leaves(state.opt_state))
    assert state_size <= 2 * adapter_size + 16  # Adam moments of adapters (+ counters)
    assert adapter_size < total / 4
    before = traverse_util.flatten_dict(jax.device_get(state.params))
    t = np.random.RandomState(0).randint(1, 97, (2, 16)).astype(np.int32)
    batch = {
        "decoder_target_tokens": t,
        "decoder_input_tokens": np.concatenate([np.zeros((2, 1), np.int32), t[:, :-1]], 1),
        "decoder_loss_weights": np.ones_like(t),
    }
    for _ in range(3):
        state, _ = steps.train(state, steps.place_batch(batch))
    after = traverse_util.flatten_dict(jax.device_get(state.params))
    for key, value in before.items():
        if key[-1] in lora.ADAPTER_LEAVES:
            if key[-1] == "lora_b":
                assert not np.array_equal(value, after[key]), key
        else:
            np.testing.assert_array_equal(value, after[key])


def random_adapters(params, seed=1):
    flat = traverse_util.flatten_dict(params)
    rng = np.random.RandomState(seed)
    for key in flat:
        if key[-1] == "lora_b":
            flat[key] = rng.normal(0, 0.1, flat[key].shape).astype(np.float32)
    return traverse_util.unflatten_dict(flat)


def test_peft_export_gives_our_logits(adapted, tmp_path):
    model, base_cfg, _, cfg, state = adapted
    params = random_adapters(jax.device_get(state.params))
    ids = np.arange(3, 15)[None]
    ours = logits(cfg, params, ids)
    adapter_dir = lora.export_peft(params, cfg, tmp_path / "adapter")
    with_adapter = peft.PeftModel.from_pretrained(model, adapter_dir).eval()
    with torch.no_grad():
        theirs = with_adapter(input_ids=torch.tensor(ids)).logits.numpy()
    assert np.abs(ours - theirs).max() <= TOL

    merged = lora.merge(params, cfg)
    assert np.abs(logits(base_cfg, merged, ids) - ours).max() <= TOL
    out = hf.export(merged, base_cfg, tmp_path / "merged")
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
        assert np.abs(reloaded(input_ids=torch.tensor(ids)).logits.numpy() - ours).max() <= TOL


def test_peft_export_refuses_modules_the_family_lacks(adapted, tmp_path):
    _, _, _, cfg, state = adapted
    with pytest.raises(ConfigError, match="falcon has no q_proj in Hugging Face"):
        lora.export_peft(state.params, cfg.replace(family="falcon"), tmp_path / "x")
    with pytest.raises(ConfigError, match="palm has no Hugging Face layout"):
        lora.export_peft(state.params, cfg.replace(family="palm"), tmp_path / "x")


def test_lora_run_from_a_hugging_face_directory(tmp_path, demo_tasks):
    _, path = tiny_llama(tmp_path, vocab=1024)
    base_cfg, base = hf.load_model_dir(path)
    data = DataConfig("demo_pinch", {"targets": 64})
    config = TrainConfig(
        str(tmp_path / "run"),
        base_cfg.replace(lora=LORA),
        batch_size=2,
        train_steps=3,
        initial_checkpoint_path=str(path),
        log_every=1,
    )
    result = loop.train(config, data, progress=False)
    assert np.isfinite(result.metrics["loss"])
    flat = traverse_util.flatten_dict(jax.device_get(result.state.params))
    for key, value in traverse_util.flatten_dict(base).items():
        np.testing.assert_array_equal(flat[key], np.asarray(value))
    with pytest.raises(ValueError, match="differs from the run's model config in num_layers"):
        other = config.replace(
            model_dir=str(tmp_path / "other"),
            model_config=base_cfg.replace(num_layers=3),
            train_steps=1,
        )
        loop.train(other, data, progress=False)


def test_scanned_adapters_export_and_merge_like_unrolled_ones(adapted, tmp_path):
    from polyglot_jax.models.decoder import stack_layers

    model, base_cfg, _, cfg, state = adapted
    params = random_adapters(jax.device_get(state.params))
    ids = np.arange(3, 15)[None]
    ours = logits(cfg, params, ids)
    scanned_cfg = cfg.replace(scan_layers=True)
    scanned = stack_layers(params, cfg.num_layers)
    assert np.abs(logits(scanned_cfg, scanned, ids) - ours).max() <= TOL
    adapter_dir = lora.export_peft(scanned, scanned_cfg, tmp_path / "adapter")
    with_adapter = peft.PeftModel.from_pretrained(model, adapter_dir).eval()
    with torch.no_grad():
        theirs = with_adapter(input_ids=torch.tensor(ids)).logits.numpy()
    assert np.abs(ours - theirs).max() <= TOL
    merged = lora.merge(scanned, scanned_cfg)
    assert "layers" in merged
    merged_logits = logits(base_cfg.replace(scan_layers=True), merged, ids)
    assert np.abs(merged_logits - ours).max() <= TOL


@pytest.mark.parametrize("scan", [False, True])
def test_targets_select_the_same_adapters_scanned_and_unrolled(tmp_path, scan):
    _, path = tiny_llama(tmp_path)
    base_cfg, _ = hf.load_model_dir(path)
    cfg = base_cfg.replace(lora=LORA, scan_layers=scan)
    params = steps_for(cfg).abstract_state.params
    found = {"/".join(k[-3:-1]) for k in lora.adapters_only(params)}
    assert found == {"attention/q_proj", "attention/v_proj", "attention/o_proj", "mlp/down_proj"}
    assert len(lora.adapters_only(params)) == 2 * 4 * (1 if scan else base_cfg.num_layers)


@pytest.mark.parametrize("scan", [False, True])
@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (("layers_0/attention/q_proj",), r"'layers_0/attention/q_proj' names no module"),
        (("query_key_value",), r"'query_key_value' names no module of a llama model"),
    ],
)
def test_a_target_that_selects_nothing_is_refused(tmp_path, scan, targets, message):
    # A layer-indexed target used to select nothing once layers were scanned, so training ran
    # with a zero gradient and a constant loss.
    _, path = tiny_llama(tmp_path)
    base_cfg, _ = hf.load_model_dir(path)
    cfg = base_cfg.replace(lora=LoRAConfig(targets=targets, rank=4), scan_layers=scan)
    with pytest.raises(ConfigError, match=message):
        steps_for(cfg)
