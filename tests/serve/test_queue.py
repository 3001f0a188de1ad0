"""Scheduler: token-budget packing, capacity, cancelled and timed-out entries, draining, callers that left."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from stancekit.serve.queue import (
    CallerGone,
    DrainingError,
    QueueFullError,
    RequestTimeoutError,
    Scheduler,
)


def _fake_predict(calls: list[list[str]]):
    def predict(texts: list[str]) -> dict[str, np.ndarray]:
        calls.append(list(texts))
        return {"stance": np.array([[float(len(t)), 0.0] for t in texts], dtype=np.float32)}

    return predict


def test_scheduler_packs_entries_up_to_the_token_budget_and_slices_results_back():
    async def scenario():
        calls: list[list[str]] = []
        scheduler = Scheduler(_fake_predict(calls), max_batch_tokens=10, max_wait_ms=20, max_queue=100)
        scheduler.start()
        # Submitted before the task first runs: all are waiting when the first batch is formed.
        futures = [scheduler.submit(["a" * (i + 1)] * 2, tokens=4) for i in range(5)]
        results = await asyncio.gather(*futures)
        await scheduler.close()
        return calls, results

    calls, results = asyncio.run(scenario())
    assert [len(c) for c in calls] == [4, 4, 2]  # 4 + 4 tokens fit in 10, a third entry would not
    for i, probs in enumerate(results):
        assert probs["stance"][:, 0].tolist() == [i + 1, i + 1]


def test_scheduler_refuses_past_capacity_and_skips_cancelled_entries():
    async def scenario():
        calls: list[list[str]] = []
        scheduler = Scheduler(_fake_predict(calls), max_batch_tokens=100, max_wait_ms=0, max_queue=5)
        scheduler.start()
        keep = scheduler.submit(["kept"], tokens=1)
        gone = scheduler.submit(["gone", "gone"], tokens=2)
        with pytest.raises(QueueFullError, match="capacity is 5"):
            scheduler.submit(["x"] * 3, tokens=3)
        gone.cancel()
        await keep
        depth_after_cancel = scheduler.queued_sentences
        await scheduler.close()
        return calls, depth_after_cancel

    calls, depth = asyncio.run(scenario())
    assert depth == 0
    assert calls == [["kept"]]


def test_scheduler_close_finishes_queued_work_then_refuses_new_work():
    async def scenario():
        calls: list[list[str]] = []
        scheduler = Scheduler(_fake_predict(calls), max_batch_tokens=4, max_wait_ms=10_000, max_queue=100)
        scheduler.start()
        futures = [scheduler.submit([f"s{i}"], tokens=2) for i in range(5)]
        await scheduler.close()
        with pytest.raises(DrainingError):
            scheduler.submit(["late"], tokens=1)
        return [f.done() and not f.cancelled() for f in futures], calls

    done, calls = asyncio.run(scenario())
    assert all(done) and sum(len(c) for c in calls) == 5


async def _busy_scheduler(calls: list[list[str]]) -> tuple[Scheduler, threading.Event, asyncio.Future]:
    """A started scheduler whose worker is stuck in a batch until the returned event is set."""
    release, entered = threading.Event(), threading.Event()

    def slow(texts):
        calls.append(list(texts))
        entered.set()
        release.wait(10)
        return {"stance": np.zeros((len(texts), 2), dtype=np.float32)}

    scheduler = Scheduler(slow, max_batch_tokens=100, max_wait_ms=0, max_queue=100)
    scheduler.start()
    running = scheduler.submit(["in the worker"], tokens=1)
    assert await asyncio.get_running_loop().run_in_executor(None, entered.wait, 10)
    return scheduler, release, running


def test_scheduler_timeout_drops_the_entry():
    async def scenario():
        scheduler, release, running = await _busy_scheduler([])
        with pytest.raises(RequestTimeoutError, match="--timeout-s"):
            await scheduler.infer(["waits"], tokens=1, timeout_s=0.05)
        depth = scheduler.queued_sentences
        release.set()
        await running
        await scheduler.close()
        return depth

    assert asyncio.run(scenario()) == 0


def test_scheduler_drops_the_entry_of_a_caller_that_left():
    async def scenario():
        calls: list[list[str]] = []
        scheduler, release, running = await _busy_scheduler(calls)
        left = asyncio.get_running_loop().create_future()
        left.set_result(None)  # the caller is already gone when the entry is queued
        with pytest.raises(CallerGone):
            await scheduler.infer(["never scored"], tokens=1, caller_gone=lambda: left)
        depth = scheduler.queued_sentences
        release.set()
        await running
        await scheduler.close()
        return depth, calls

    depth, calls = asyncio.run(scenario())
    assert depth == 0 and calls == [["in the worker"]]


def test_scheduler_runs_concurrency_batches_at_once():
    # Each predict call waits at a two-party barrier: it only passes if two batches are in flight together.
    barrier = threading.Barrier(2, timeout=10)

    def predict(texts: list[str]) -> dict[str, np.ndarray]:
        barrier.wait()
        return {"stance": np.zeros((len(texts), 2), dtype=np.float32)}

    async def scenario():
        scheduler = Scheduler(predict, max_batch_tokens=4, max_wait_ms=0, max_queue=100, concurrency=2)
        scheduler.start()
        results = await asyncio.gather(scheduler.submit(["a"], tokens=4), scheduler.submit(["b"], tokens=4))
        await scheduler.close()
        return results

    results = asyncio.run(scenario())
    assert [r["stance"].shape for r in results] == [(1, 2), (1, 2)]


def test_batch_budget_shares_a_short_backlog_and_caps_a_deep_one():
    async def scenario():
        scheduler = Scheduler(_fake_predict([]), max_batch_tokens=100, max_wait_ms=0, max_queue=1000, concurrency=2)
        budgets = []
        for queued in (10, 60, 1000):
            scheduler.queued_tokens = queued
            budgets.append(scheduler.batch_budget())
        return budgets

    # 10 and 60 queued: half each for two workers; 1000: capped at max_batch_tokens.
    assert asyncio.run(scenario()) == [5, 30, 100]


def test_a_lone_entry_waits_for_company_only_while_a_request_is_incoming():
    async def scenario():
        calls: list[list[str]] = []
        scheduler = Scheduler(_fake_predict(calls), max_batch_tokens=100, max_wait_ms=2_000, max_queue=100)
        scheduler.start()
        loop = asyncio.get_running_loop()
        # Nobody on the way: the lone entry runs at once, not after max_wait.
        started = loop.time()
        await scheduler.submit(["alone"], tokens=1)
        alone_s = loop.time() - started
        # A request being tokenized: the waiting entry holds for it, and both share one batch.
        with scheduler.incoming():
            first = scheduler.submit(["first"], tokens=1)
            await asyncio.sleep(0.05)
            assert not first.done()
            second = scheduler.submit(["second"], tokens=1)
        await asyncio.gather(first, second)
        await scheduler.close()
        return alone_s, calls, scheduler.incoming_requests

    alone_s, calls, incoming = asyncio.run(scenario())
    assert alone_s < 1.0
    assert calls == [["alone"], ["first", "second"]]
    assert incoming == 0
