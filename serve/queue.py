"""Cross-request scheduler: a bounded queue of sentence work packed into token-budget batches.

Requests submit their sentences as one entry each. One batching task on the event
loop packs entries from concurrent requests into batches of at most
`max_batch_tokens` tokens, waiting up to `max_wait_ms` for company while a
worker is idle and another request is on its way (`incoming`), skips entries
whose caller gave up, and hands each batch to one of `concurrency` worker threads
that run the predictor, so inference never blocks the event loop and a new batch
starts as soon as a worker is free. Past `max_queue`
waiting sentences `submit` raises instead of growing memory. The scheduler knows
nothing of HTTP or of the model: it calls `predict(rows) -> {head: probabilities}`
(one row per sentence: its text, or its token ids as the HTTP layer sends) and
slices the rows back per entry.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from stancekit.errors import OverloadedError

logger = logging.getLogger(__name__)

Probs = dict[str, np.ndarray]


class QueueFullError(OverloadedError):
    """The queue holds `max_queue` sentences already; retry after the hinted delay."""


class DrainingError(OverloadedError):
    """The service is shutting down and accepts no new work."""


class RequestTimeoutError(OverloadedError):
    """A request's sentences were not scored within the per-request timeout."""


class CallerGone(Exception):
    """The caller stopped waiting (client disconnected); nothing is left to answer."""


class BatchObserver(Protocol):
    """Receives scheduler events (the HTTP layer turns them into metrics)."""

    def on_batch(self, sentences: int, tokens: int, seconds: float) -> None: ...

    def on_dropped(self, sentences: int) -> None: ...


class _NullObserver:
    def on_batch(self, sentences: int, tokens: int, seconds: float) -> None:
        pass

    def on_dropped(self, sentences: int) -> None:
        pass


@dataclass(eq=False)
class Entry:
    """One request's sentences waiting for a batch; `future` receives their probabilities."""

    rows: list[Any]
    tokens: int
    future: asyncio.Future
    enqueued: float
    taken: bool = field(default=False)


class Scheduler:
    """Bounded queue + batching task + one predictor thread.

    Parameters
    ----------
    predict : callable
        ``predict(rows) -> {head: array (len(rows), n_labels)}``, run in the worker thread.
    max_batch_tokens : int
        Token budget of one batch, summed over its sentences; one larger entry still runs alone.
    max_wait_ms : float
        How long the first waiting entry may wait for others while a worker is idle and
        another request is on its way (inside `incoming`).
    max_queue : int
        Sentences allowed to wait; a submission that would exceed it raises QueueFullError.
    batching : bool
        False runs every entry as its own batch (the no-batching baseline).
    concurrency : int
        Batches in flight at once (match the predictor's workers so none sits idle).
    """

    def __init__(
        self,
        predict: Callable[[list[Any]], Probs],
        max_batch_tokens: int,
        max_wait_ms: float,
        max_queue: int,
        batching: bool = True,
        observer: BatchObserver | None = None,
        concurrency: int = 1,
    ):
        self.predict = predict
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.batching = batching
        self.concurrency = concurrency
        self.observer = observer or _NullObserver()
        self._pending: deque[Entry] = deque()
        self.queued_sentences = 0
        self.queued_tokens = 0
        self.queued_requests = 0
        self.incoming_requests = 0  # requests being read or tokenized: the only company worth waiting for
        self._sentences_per_s = 0.0  # moving average, for the Retry-After hint
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.closing = False

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the batching task on the running loop and the predictor thread."""
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="stancekit-predictor")
        self._task = asyncio.get_running_loop().create_task(self._batch_loop(), name="stancekit-batcher")

    async def close(self) -> None:
        """Refuse new work, finish every queued entry, then stop the task and the thread."""
        self.closing = True
        if self._task is None:
            return
        self._arrived.set()
        await self._task
        self._executor.shutdown(wait=True)
        self._task = None

    # -- submission ----------------------------------------------------------------------------
    @contextmanager
    def incoming(self) -> Iterator[None]:
        """Mark one request as on its way to `submit`, so a lone waiting entry may wait for it.

        Enter it on the event loop before the request's own work (splitting, tokenizing);
        with no request inside, the batcher starts a waiting entry at once instead of
        spending max_wait on company that is not coming.
        """
        self.incoming_requests += 1
        try:
            yield
        finally:
            self.incoming_requests -= 1
            if self._arrived is not None:
                self._arrived.set()  # a waiting batcher re-checks: this request submitted or failed

    def submit(self, rows: Sequence[Any], tokens: int) -> asyncio.Future:
        """Queue one request's sentences; the future resolves to their probabilities per head."""
        return self._enqueue(rows, tokens).future

    def _enqueue(self, rows: Sequence[Any], tokens: int) -> Entry:
        if self.closing or self._task is None:
            raise DrainingError("the service is shutting down and accepts no new requests; retry on another replica")
        n = len(rows)
        if self.queued_sentences + n > self.max_queue:
            raise QueueFullError(
                f"queue full: {self.queued_sentences} sentences waiting, this request adds {n}, "
                f"capacity is {self.max_queue} (--max-queue); retry in {self.retry_after_s()} s"
            )
        loop = asyncio.get_running_loop()
        entry = Entry(list(rows), tokens, loop.create_future(), loop.time())
        entry.future.add_done_callback(lambda fut, e=entry: self._on_done(e, fut))
        self._pending.append(entry)
        self._count(entry, +1)
        self._arrived.set()
        return entry

    async def infer(
        self,
        rows: Sequence[Any],
        tokens: int,
        timeout_s: float | None = None,
        caller_gone: Callable[[], Awaitable[object]] | None = None,
    ) -> Probs:
        """Submit and wait; a timeout or `caller_gone()` completing first drops the entry and raises."""
        entry = self._enqueue(rows, tokens)
        future = entry.future
        watcher = asyncio.ensure_future(caller_gone()) if caller_gone is not None else None
        try:
            waiting = {future} if watcher is None else {future, watcher}
            done, _ = await asyncio.wait(waiting, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if watcher is not None:
                watcher.cancel()
            if not future.done():
                future.cancel()
                self._gone(entry)  # release its capacity now rather than on the next loop turn
        if future in done:
            return future.result()
        if watcher is not None and watcher in done:
            raise CallerGone(f"caller left before its {len(rows)} sentences were scored")
        raise RequestTimeoutError(
            f"request of {len(rows)} sentences not scored within {timeout_s:g} s (--timeout-s); "
            f"{self.queued_sentences} sentences are waiting"
        )

    def retry_after_s(self) -> int:
        """Seconds until the current queue is likely drained (at least 1), for Retry-After."""
        if self._sentences_per_s <= 0:
            return 1
        return int(min(60, max(1, math.ceil(self.queued_sentences / self._sentences_per_s))))

    def _count(self, entry: Entry, sign: int) -> None:
        self.queued_sentences += sign * len(entry.rows)
        self.queued_tokens += sign * entry.tokens
        self.queued_requests += sign

    def _on_done(self, entry: Entry, future: asyncio.Future) -> None:
        self._gone(entry)

    def _gone(self, entry: Entry) -> bool:
        """True once `entry` left the queue; a cancelled future (caller left) releases its capacity."""
        if not entry.taken and entry.future.cancelled():
            entry.taken = True
            self._count(entry, -1)
            self.observer.on_dropped(len(entry.rows))
        return entry.taken

    # -- batching ------------------------------------------------------------------------------
    def _purge(self) -> None:
        while self._pending and self._gone(self._pending[0]):
            self._pending.popleft()

    async def _wait_for_company(self) -> None:
        """Wait while a request is on its way, until the budget is full, the oldest entry waited
        max_wait, or shutdown began."""
        loop = asyncio.get_running_loop()
        while (self.batching and not self.closing and self.incoming_requests
               and self.queued_tokens < self.max_batch_tokens):
            self._purge()
            if not self._pending:
                return
            remaining = self._pending[0].enqueued + self.max_wait_s - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def batch_budget(self) -> int:
        """Tokens the next batch may take: its worker's share of the backlog, at most max_batch_tokens.

        A deep backlog (many clients) fills max_batch_tokens, where sorting across requests
        pads least; a short one is shared out over the workers, so no request waits for a
        batch several times its own size while a worker could have run it. The oldest
        entry is always taken, whatever its size.
        """
        return min(self.max_batch_tokens, math.ceil(self.queued_tokens / self.concurrency))

    def _take_batch(self) -> list[Entry]:
        batch: list[Entry] = []
        tokens = 0
        budget = self.batch_budget()
        while self._pending:
            entry = self._pending[0]
            if self._gone(entry):
                self._pending.popleft()
                continue
            if batch and (not self.batching or tokens + entry.tokens > budget):
                break
            self._pending.popleft()
            entry.taken = True
            self._count(entry, -1)
            batch.append(entry)
            tokens += entry.tokens
        return batch

    def _predict_timed(self, rows: list[Any]) -> tuple[Probs, float]:
        started = time.perf_counter()
        probs = self.predict(rows)
        return probs, time.perf_counter() - started

    async def _run_batch(self, batch: list[Entry]) -> None:
        rows = [t for e in batch for t in e.rows]
        loop = asyncio.get_running_loop()
        try:
            probs, seconds = await loop.run_in_executor(self._executor, self._predict_timed, rows)
        except Exception as err:  # reach every waiting caller; the loop must survive any model error
            logger.exception("batch of %d sentences failed", len(rows))
            for e in batch:
                if not e.future.done():
                    e.future.set_exception(err)
            return
        pos = 0
        for e in batch:
            n = len(e.rows)
            if not e.future.done():
                e.future.set_result({h: p[pos:pos + n] for h, p in probs.items()})
            pos += n
        self.observer.on_batch(len(rows), sum(e.tokens for e in batch), seconds)
        rate = self.concurrency * len(rows) / max(seconds, 1e-6)  # batches in flight share the cores
        self._sentences_per_s = rate if self._sentences_per_s == 0 else 0.8 * self._sentences_per_s + 0.2 * rate

    async def _batch_loop(self) -> None:
        running: set[asyncio.Task] = set()
        while True:
            self._purge()
            if not self._pending:
                if self.closing:
                    await asyncio.gather(*running)
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            if len(running) >= self.concurrency:
                await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                continue
            await self._wait_for_company()
            batch = self._take_batch()
            if batch:
                task = asyncio.get_running_loop().create_task(self._run_batch(batch))
                running.add(task)
                task.add_done_callback(running.discard)
