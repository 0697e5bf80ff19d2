"""Best-fit packing keeps every token, fills rows tightly, and handles over-long examples."""

import collections

import numpy as np
import pytest
import seqio
import tensorflow as tf

from polyglot_jax.data import packing, preprocessors


def test_best_fit_bins_use_every_item_once_within_capacity():
    lengths = np.random.default_rng(0).integers(1, 100, 500).tolist()
    bins = packing.best_fit_bins(lengths, 128)
    assert sorted(i for b in bins for i in b) == list(range(500))
    assert all(sum(lengths[i] for i in b) <= 128 for b in bins)
    lower_bound = -(-sum(lengths) // 128)
    assert len(bins) <= lower_bound * 1.02 + 1


def test_pack_window_rows_hold_segments_in_order():
    features = [np.arange(1, 11, dtype=np.int32), np.full(10, 2, np.int32)]
    targets, mask, segments, positions = packing.pack_window(features, np.array([3, 5, 2]), 8)
    assert targets.shape == (2, 8)
    got = collections.Counter()
    for row in range(2):
        for s in range(1, segments[row].max() + 1):
            where = segments[row] == s
            got[tuple(targets[row][where])] += 1
            assert positions[row][where].tolist() == list(range(where.sum()))
            assert (mask[row][where] == 2).all()
    assert got == collections.Counter({(1, 2, 3): 1, (4, 5, 6, 7, 8): 1, (9, 10): 1})


def _examples(lengths):
    def gen():
        for i, n in enumerate(lengths):
            yield {
                "targets": np.arange(1, n + 1, dtype=np.int32) + 1000 * i,
                "loss_mask": np.full(n, 2, np.int32),
            }

    spec = {k: tf.TensorSpec([None], tf.int32) for k in ("targets", "loss_mask")}
    return tf.data.Dataset.from_generator(gen, output_signature=spec)


@pytest.mark.parametrize("packer", ["best_fit", "seqio"])
@pytest.mark.parametrize("overlong", ["truncate", "drop"])
def test_converter_truncates_or_drops_overlong_examples(packer, overlong):
    lengths = [5, 40, 7, 3, 12]
    converter = preprocessors.ChatFeatureConverter(packer=packer, overlong=overlong)
    rows = list(converter(_examples(lengths), {"targets": 16}).as_numpy_iterator())
    seen = []
    for row in rows:
        seg = row["decoder_segment_ids"]
        for s in range(1, seg.max() + 1):
            seen.append(tuple(row["decoder_target_tokens"][seg == s]))
    expected = [
        tuple(np.arange(1, min(n, 16) + 1) + 1000 * i)
        for i, n in enumerate(lengths)
        if overlong == "truncate" or n <= 16
    ]
    assert sorted(seen) == sorted(expected)
    assert all(
        row["decoder_loss_weights"].sum() == (row["decoder_segment_ids"] > 0).sum() for row in rows
    )


def _start_examples(lengths, trim=None):
    """Examples whose first token is marked START (a Hugging Face tokenizer's BOS); ``trim``
    cuts ``targets`` but not ``loss_mask``, as SeqIO trims task features."""

    def gen():
        for i, n in enumerate(lengths):
            mask = np.where(np.arange(n) % 3 == 0, 1, 2).astype(np.int32)
            mask[0] = preprocessors.START
            yield {"targets": (np.arange(n) + 1000 * i)[:trim].astype(np.int32), "loss_mask": mask}

    spec = {k: tf.TensorSpec([None], tf.int32) for k in ("targets", "loss_mask")}
    return tf.data.Dataset.from_generator(gen, output_signature=spec)


@pytest.mark.parametrize("packer", ["best_fit", "seqio"])
@pytest.mark.parametrize("pack", [True, False])
@pytest.mark.parametrize("trim", [None, 16])
def test_every_loss_weight_stays_with_its_token_after_an_overlong_example(packer, pack, trim):
    lengths = [40, 5, 7, 3, 12, 30, 9]
    converter = preprocessors.ChatFeatureConverter(pack=pack, packer=packer)
    rows = list(converter(_start_examples(lengths, trim), {"targets": 16}).as_numpy_iterator())
    weights = {}
    for row in rows:
        seg = row.get("decoder_segment_ids", (row["decoder_target_tokens"] > 0).astype(int))
        assert not row["decoder_loss_weights"][seg == 0].any()  # no weight on padding
        for s in range(1, seg.max() + 1):
            tokens = row["decoder_target_tokens"][seg == s]
            weights[tokens[0] // 1000] = (tokens, row["decoder_loss_weights"][seg == s])
    assert sorted(weights) == list(range(len(lengths)))
    for i, (tokens, got) in weights.items():
        n = min(lengths[i] - 1, 16 if trim is None else 15)  # SeqIO's trim keeps START's room
        assert tokens.tolist() == list(range(1000 * i + 1, 1000 * i + 1 + n))
        assert got.tolist() == [int(k % 3 != 0) for k in range(1, n + 1)]


def test_overlong_drop_works_after_seqio_trimmed_the_targets():
    converter = preprocessors.ChatFeatureConverter(overlong="drop")
    rows = list(
        converter(_start_examples([40, 5, 17, 18], 16), {"targets": 16}).as_numpy_iterator()
    )
    starts = [
        t
        for r in rows
        for t in r["decoder_target_tokens"][
            (r["decoder_positions"] == 0) & (r["decoder_segment_ids"] > 0)
        ]
    ]
    assert sorted(starts) == [1001, 2001]  # 17 tokens: 16 after START


def test_best_fit_is_tighter_than_seqio_on_chat_lengths():
    lengths = np.clip(np.random.default_rng(0).lognormal(np.log(60), 0.8, 400).astype(int), 4, 400)

    def efficiency(packer):
        converter = preprocessors.ChatFeatureConverter(packer=packer)
        rows = list(converter(_examples(lengths), {"targets": 256}).as_numpy_iterator())
        return sum((r["decoder_segment_ids"] > 0).sum() for r in rows) / (len(rows) * 256)

    ours, theirs = efficiency("best_fit"), efficiency("seqio")
    assert ours >= 0.95 and ours > theirs


def test_unknown_packer_is_named():
    with pytest.raises(ValueError, match="packer"):
        preprocessors.ChatFeatureConverter(packer="magic")


@pytest.mark.parametrize("task", ["demo_en", "demo_pinch.en", "demo_pinch.zh"])
def test_each_host_reads_a_disjoint_share_that_covers_the_data(demo_tasks, task):
    def examples(shard):
        ds = seqio.get_mixture_or_task(task).get_dataset(
            {"targets": 256}, "train", shuffle=False, num_epochs=1, shard_info=shard
        )
        return [ex["id"].decode() for ex in ds.as_numpy_iterator()]

    single = examples(None)
    hosts = [examples(seqio.ShardInfo(i, 2)) for i in range(2)]
    assert not set(hosts[0]) & set(hosts[1])
    assert sorted(hosts[0] + hosts[1]) == sorted(single)
    assert abs(len(hosts[0]) - len(hosts[1])) <= 1
