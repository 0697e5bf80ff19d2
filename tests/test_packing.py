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
