"""Length-sorted, token-budget batches with dynamic padding, or packed rows; callers restore input order by index."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def round_up(n: int, multiple: int) -> int:
    """`n` rounded up to a multiple of `multiple`."""
    return -(-n // multiple) * multiple


def plan_batches(
    lengths: Sequence[int], max_batch_tokens: int, max_batch_size: int | None = None, multiple: int = 1
) -> list[np.ndarray]:
    """Group row indices into batches, longest first, so rows x longest length stays within the budget.

    A single row longer than the budget still gets a batch of its own. With `multiple` > 1
    the budget is counted on the padded shape `pad_batch` will build (length rounded up),
    and full batches hold a multiple of `multiple` rows, so only a tail batch gets pad rows.

    >>> [b.tolist() for b in plan_batches([3, 10, 4, 9], max_batch_tokens=20)]
    [[1, 3], [2, 0]]
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        width = round_up(int(lengths[order[start]]), multiple)  # longest row of this batch: the sort puts it first
        rows = max(1, max_batch_tokens // max(width, 1))
        if max_batch_size:
            rows = min(rows, max_batch_size)
        if rows > multiple:
            rows -= rows % multiple
        batches.append(order[start:start + rows])
        start += rows
    return batches


def pad_batch(
    ids: Sequence[Sequence[int]], type_ids: Sequence[Sequence[int]] | None, pad_id: int, multiple: int = 1
) -> dict[str, np.ndarray]:
    """input_ids / attention_mask (/ token_type_ids) padded to the longest row, int64.

    With `multiple` > 1, rows and length are both rounded up to a multiple of it, so the
    engine sees few distinct shapes: oneDNN builds (and caches) kernels per matrix shape,
    which costs more than the padding on a new shape (bench/shapes.py). Pad rows attend
    to their first position only; callers keep the first len(ids) rows of the output.
    """
    width = round_up(max(len(x) for x in ids), multiple)
    n_rows = round_up(len(ids), multiple)
    input_ids = np.full((n_rows, width), pad_id, dtype=np.int64)
    mask = np.zeros((n_rows, width), dtype=np.int64)
    mask[len(ids):, 0] = 1
    types = np.zeros((n_rows, width), dtype=np.int64) if type_ids is not None else None
    for r, row in enumerate(ids):
        input_ids[r, :len(row)] = row
        mask[r, :len(row)] = 1
        if types is not None:
            types[r, :len(row)] = type_ids[r]
    out = {"input_ids": input_ids, "attention_mask": mask}
    if types is not None:
        out["token_type_ids"] = types
    return out


def padding_share(lengths: Sequence[int], batches: list[np.ndarray]) -> float:
    """Fraction of batched token slots that are padding."""
    lengths = np.asarray(lengths)
    slots = sum(len(b) * int(lengths[b].max()) for b in batches if len(b))
    return 0.0 if slots == 0 else 1.0 - float(lengths.sum()) / slots


def padded_slots(lengths: Sequence[int], batches: list[np.ndarray], multiple: int = 1) -> int:
    """Token slots the padded batches take, rows and length rounded as `pad_batch` rounds them."""
    return sum(round_up(len(b), multiple) * round_up(int(max(lengths[i] for i in b)), multiple) for b in batches)


def pack_rows(lengths: Sequence[int], width: int) -> list[list[int]]:
    """Inputs placed end to end in rows of `width` tokens (first fit, longest first): each row lists its inputs.

    >>> pack_rows([5, 3, 4, 2], width=8)
    [[0, 1], [2, 3]]
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order.tolist():
        n = int(lengths[i])
        if n > width:
            raise ValueError(f"input {i} has {n} tokens, more than the row width {width}")
        for r, room in enumerate(free):
            if room >= n:
                rows[r].append(i)
                free[r] -= n
                break
        else:
            rows.append([i])
            free.append(width - n)
    return rows


def pack_batch(
    ids: Sequence[Sequence[int]], type_ids: Sequence[Sequence[int]] | None, rows: list[list[int]], width: int,
    pad_id: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Arrays for `rows` of packed inputs, and the input index of each segment in output order.

    Segment k (1-based, 0 marks padding) holds one input; its positions restart at 0, and
    the engine lets tokens attend only within their segment and pools each segment alone,
    so every input is scored as if it had a row of its own, without the padding.
    """
    n_rows = len(rows)
    input_ids = np.full((n_rows, width), pad_id, dtype=np.int64)
    positions = np.zeros((n_rows, width), dtype=np.int64)
    segments = np.zeros((n_rows, width), dtype=np.int64)
    types = np.zeros((n_rows, width), dtype=np.int64)
    order = [i for row in rows for i in row]
    lengths = np.array([len(ids[i]) for i in order], dtype=np.int64)
    k = 0
    for r, row in enumerate(rows):
        pos = 0
        for i in row:
            n = len(ids[i])
            input_ids[r, pos:pos + n] = ids[i]
            positions[r, pos:pos + n] = np.arange(n)
            segments[r, pos:pos + n] = k + 1
            if type_ids is not None:
                types[r, pos:pos + n] = type_ids[i]
            pos += n
            k += 1
    batch = {
        "input_ids": input_ids, "token_type_ids": types, "position_ids": positions,
        "segment_ids": segments, "segment_lengths": lengths,
    }
    return batch, np.asarray(order, dtype=np.int64)
