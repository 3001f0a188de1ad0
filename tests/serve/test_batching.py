"""Token-budget batching: budget respected, every row once, order restorable."""

from __future__ import annotations

import numpy as np
import pytest

from stancekit.serve.batching import pad_batch, padding_share, plan_batches


@pytest.mark.parametrize("budget", [16, 64, 500])
def test_plan_batches_respects_budget_and_covers_all_rows(budget, global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    lengths = rng.integers(3, 40, size=200)
    batches = plan_batches(lengths, budget)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(200))
    for b in batches:
        assert len(b) == 1 or len(b) * lengths[b].max() <= budget


def test_plan_batches_sorts_longest_first():
    batches = plan_batches([5, 30, 10, 20], max_batch_tokens=1000)
    assert batches[0].tolist() == [1, 3, 2, 0]


def test_plan_batches_reduces_padding_versus_input_order(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    lengths = rng.integers(5, 80, size=512)
    sorted_share = padding_share(lengths, plan_batches(lengths, 2048))
    naive = [np.arange(i, min(i + 32, 512)) for i in range(0, 512, 32)]
    assert sorted_share < padding_share(lengths, naive) / 3


def test_pad_batch_masks_padding():
    out = pad_batch([[1, 2, 3], [4]], [[0, 0, 0], [0]], pad_id=0)
    assert out["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert out["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert out["token_type_ids"].shape == (2, 3)


def _total_cost(lengths, batches):
    from stancekit.serve.batching import batch_cost

    return sum(batch_cost(len(b), int(np.asarray(lengths)[b].max())) for b in batches)


@pytest.mark.parametrize("n", [20, 200])
def test_small_inputs_get_cuts_no_costlier_than_filling_the_budget(n, global_random_seed):
    from stancekit.serve.batching import _filled_cuts

    rng = np.random.default_rng(global_random_seed)
    lengths = rng.integers(8, 128, size=n)
    planned = plan_batches(lengths, 2048)
    order = np.argsort(-lengths, kind="stable")
    cuts = _filled_cuts(lengths[order], 2048, n)
    filled = [order[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    assert sorted(np.concatenate(planned).tolist()) == list(range(n))
    assert all(len(b) * lengths[b].max() <= 2048 for b in planned)
    assert _total_cost(lengths, planned) <= _total_cost(lengths, filled)


def test_one_long_sentence_does_not_pad_the_whole_article():
    lengths = [120] + [20] * 19
    batches = plan_batches(lengths, 4096)
    assert [b.tolist() for b in batches] == [[0], list(range(1, 20))]
    assert padding_share(lengths, batches) == 0.0
