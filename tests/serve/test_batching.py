"""Token-budget batching: budget respected, every row once, order restorable."""

from __future__ import annotations

import numpy as np
import pytest

from stancekit.serve.batching import (
    pack_batch,
    pack_rows,
    pad_batch,
    padding_share,
    plan_batches,
    round_up,
)


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


@pytest.mark.parametrize("multiple", [4, 8])
def test_plan_batches_with_multiple_counts_padded_shapes(multiple, global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    lengths = rng.integers(3, 60, size=300)
    batches = plan_batches(lengths, 512, multiple=multiple)
    assert sorted(np.concatenate(batches).tolist()) == list(range(300))
    for b in batches[:-1]:  # full batches: a multiple of rows, and their padded shape fits the budget
        width = round_up(int(lengths[b].max()), multiple)
        assert len(b) % multiple == 0 or len(b) < multiple
        assert len(b) == 1 or len(b) * width <= 512


def test_pad_batch_rounds_shape_and_pad_rows_attend_to_one_position():
    out = pad_batch([[1, 2, 3], [4, 5], [6, 7, 8, 9, 10]], [[0] * 3, [0] * 2, [0] * 5], pad_id=0, multiple=4)
    assert out["input_ids"].shape == (4, 8) and out["token_type_ids"].shape == (4, 8)
    assert out["input_ids"][2, :5].tolist() == [6, 7, 8, 9, 10] and out["input_ids"][2, 5:].sum() == 0
    assert out["attention_mask"].sum(1).tolist() == [3, 2, 5, 1]
    assert out["attention_mask"][3].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]


def test_pack_rows_places_every_input_once_within_the_width(global_random_seed):
    rng = np.random.default_rng(global_random_seed)
    lengths = rng.integers(3, 60, size=300)
    rows = pack_rows(lengths, 64)
    assert sorted(i for row in rows for i in row) == list(range(300))
    assert all(sum(lengths[i] for i in row) <= 64 for row in rows)
    assert sum(lengths) / (len(rows) * 64) > 0.9  # first fit decreasing wastes little on many inputs


def test_pack_rows_refuses_an_input_wider_than_the_row():
    with pytest.raises(ValueError, match="input 1 has 9 tokens, more than the row width 8"):
        pack_rows([3, 9], 8)


def test_pack_batch_restarts_positions_and_numbers_segments():
    ids = [[2, 5, 3], [2, 6, 7, 8, 3], [2, 3]]
    batch, order = pack_batch(ids, [[0] * 3, [1] * 5, [0] * 2], [[1, 0], [2]], width=8, pad_id=0)
    assert order.tolist() == [1, 0, 2]
    assert batch["input_ids"].tolist() == [[2, 6, 7, 8, 3, 2, 5, 3], [2, 3, 0, 0, 0, 0, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2], [0, 1, 0, 0, 0, 0, 0, 0]]
    assert batch["segment_ids"].tolist() == [[1, 1, 1, 1, 1, 2, 2, 2], [3, 3, 0, 0, 0, 0, 0, 0]]
    assert batch["token_type_ids"][0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert batch["segment_lengths"].tolist() == [5, 3, 2]
