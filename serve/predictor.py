"""Predictor: artifact loaded once; texts in, calibrated probabilities per head out, in input order.

Tokenizes with `tokenizers` (tokenizer.json), plans length-sorted token-budget
batches, calls the engine (the hot path), and restores input order by index.
The same object works in-process and as a Ray Data `map_batches` callable.
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stancekit.errors import ConfigError, RequestError
from stancekit.model.artifact import TOKENIZER_DIR, Manifest, verify_artifact
from stancekit.model.probs import softmax
from stancekit.serve.batching import (
    pack_batch,
    pack_rows,
    pad_batch,
    padded_slots,
    plan_batches,
    round_up,
)
from stancekit.serve.engines import make_engine

logger = logging.getLogger(__name__)

# Packed rows cost about 3 % more per token slot than padded ones (wider attention, the
# segment mask), so inputs are packed only when the busiest worker's padded slots exceed
# its packed slots by more than this.
PACK_WHEN_PADDING_OVER = 1.15
PACK_MIN_WIDTH = 64  # narrower rows fit fewer inputs; wider ones spend more on attention


@dataclass
class Encoded:
    """Token ids per model input; `owner[k]` is the input text that window k belongs to."""

    ids: list[list[int]]
    type_ids: list[list[int]]
    owner: np.ndarray
    truncated: np.ndarray  # per input text: longer than max_length

    @property
    def n_truncated(self) -> int:
        """Inputs longer than the model's max length (truncated, or split into windows)."""
        return int(self.truncated.sum())

    @property
    def n_inputs(self) -> int:
        """Number of input texts (windows of one text count once)."""
        return len(self.truncated)

    @property
    def n_tokens(self) -> int:
        """Tokens over all windows: the scheduler's unit of cost."""
        return sum(len(x) for x in self.ids)

    def rows(self) -> list[Encoded]:
        """One Encoded per input text, so callers can regroup inputs without tokenizing again."""
        windows: list[list[int]] = [[] for _ in range(self.n_inputs)]
        for k, i in enumerate(self.owner):
            windows[i].append(k)
        return [
            Encoded([self.ids[k] for k in ks], [self.type_ids[k] for k in ks], np.zeros(len(ks), dtype=np.int64),
                    self.truncated[i:i + 1])
            for i, ks in enumerate(windows)
        ]

    @classmethod
    def concat(cls, parts: Sequence[Encoded]) -> Encoded:
        """Inputs of several Encoded, in order, as one."""
        ids, types, owners, start = [], [], [], 0
        for part in parts:
            ids.extend(part.ids)
            types.extend(part.type_ids)
            owners.append(part.owner + start)
            start += part.n_inputs
        owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
        truncated = np.concatenate([p.truncated for p in parts]) if parts else np.zeros(0, dtype=bool)
        return cls(ids, types, owner, truncated)


def _makespan(costs: Sequence[int], workers: int) -> int:
    """Largest per-worker sum when the batches go, in order, to whichever worker is free first."""
    load = [0] * workers
    for c in costs:
        load[load.index(min(load))] += c
    return max(load)


@dataclass
class PackedBatch:
    """Rows of `width` tokens, each listing the inputs placed end to end in it."""

    rows: list[list[int]]
    width: int


class Predictor:
    """Calibrated per-head probabilities for sentences, from a verified artifact.

    Parameters
    ----------
    artifact : path
        Artifact directory written by `stancekit train`.
    backend : str, optional
        "torch" (fp32), "torch-bf16", "torch-int8", "onnx" or "onnx-int8".
    threads : int, optional
        Inference threads in all (default: all cores).
    workers : int
        Batches run at once, each on threads // workers threads. Several single-threaded
        batches side by side avoid the per-op thread barriers of one multi-threaded batch,
        which stall whenever other work (HTTP, splitting) takes a core: see bench/throughput.py.
    max_batch_tokens : int, optional
        Token budget per batch (rows x padded length).
    pad_multiple : int, optional
        Round every padded batch's rows and length up to a multiple of this: fewer distinct
        shapes for the engine to compile kernels for (the HTTP service uses 4), a little
        more padding (bulk scoring keeps 1). Packed batches have few widths already and
        keep their exact row count.
    packing : bool, optional
        Let inputs of very different lengths share rows (torch engines whose encoder takes
        position ids). Used only when the busiest worker's padded token slots exceed its
        packed slots by more than 15 %, as for a lone 20-sentence article on two workers;
        length-sorted bulk batches barely pad and stay padded.
    long_text : {"truncate", "window"}, optional
        Inputs longer than the model's max length are truncated (counted and logged) or
        scored as overlapping windows whose probabilities are averaged.

    backend, threads, max_batch_tokens, pad_multiple, packing, long_text and window_stride left as None come
    from the `serve` section of the config the artifact was trained with.
    """

    def __init__(
        self,
        artifact: str | Path,
        backend: str | None = None,
        threads: int | None = None,
        workers: int = 1,
        max_batch_tokens: int | None = None,
        long_text: str | None = None,
        window_stride: int | None = None,
        pad_multiple: int | None = None,
        packing: bool | None = None,
    ):
        from tokenizers import Tokenizer

        from stancekit.config import ServeConfig

        self.artifact = verify_artifact(artifact)
        self.manifest: Manifest = self.artifact.manifest
        trained = ServeConfig(**self.manifest.training_config.get("serve", {}))
        backend = backend or trained.backend
        threads = threads or trained.threads
        max_batch_tokens = trained.max_batch_tokens if max_batch_tokens is None else max_batch_tokens
        long_text = long_text or trained.long_text
        window_stride = window_stride or trained.window_stride
        pad_multiple = trained.pad_multiple if pad_multiple is None else pad_multiple
        packing = trained.packing if packing is None else packing
        if long_text not in ("truncate", "window"):
            raise ConfigError(f"long_text must be 'truncate' or 'window'; got {long_text!r}")
        if pad_multiple < 1:
            raise ConfigError(f"pad_multiple must be >= 1; got {pad_multiple}")
        if max_batch_tokens < 1:
            raise ConfigError(f"max_batch_tokens must be >= 1; got {max_batch_tokens}")
        total_threads = threads or os.cpu_count() or 1
        if not 1 <= workers <= total_threads:
            raise ConfigError(f"workers must be between 1 and the {total_threads} inference threads; got {workers}")
        self.backend = backend
        self.max_batch_tokens = max_batch_tokens
        self.pad_multiple = pad_multiple
        self.long_text = long_text
        self.tokenizer = Tokenizer.from_file(str(self.artifact.path / TOKENIZER_DIR / "tokenizer.json"))
        self.tokenizer.no_padding()
        max_len = self.manifest.max_length
        stride = min(window_stride, max_len // 2) if long_text == "window" else 0
        self.tokenizer.enable_truncation(max_len, stride=stride)
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        self.workers = workers
        self.engine = make_engine(
            self.artifact, backend, threads if workers == 1 else total_threads // workers, packing=packing
        )
        self.packing = packing and self.engine.packs
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="stancekit-engine") if workers > 1 else None
        self.heads = {h: spec.labels for h, spec in self.manifest.heads.items()}
        self.stats: Counter = Counter()

    @classmethod
    def from_artifact(cls, path: str | Path, **kwargs) -> Predictor:
        """Load an artifact (checksums and labels verified)."""
        return cls(path, **kwargs)

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> Encoded:
        """Tokenize; over-long inputs become windows (long_text=window) or are truncated and counted."""
        if self.manifest.text_pair and pairs is None:
            raise RequestError("this model scores (target, text) pairs: pass pairs=[target per text]")
        inputs = list(texts) if pairs is None else list(zip(texts, pairs))
        encodings = self.tokenizer.encode_batch_fast(inputs)  # no character offsets: not needed here
        ids, types, owner = [], [], []
        truncated = np.zeros(len(encodings), dtype=bool)
        for i, enc in enumerate(encodings):
            windows = [enc] + (list(enc.overflowing) if self.long_text == "window" else [])
            truncated[i] = bool(enc.overflowing)
            for w in windows:
                ids.append(w.ids)
                types.append(w.type_ids)
                owner.append(i)
        return Encoded(ids, types, np.asarray(owner, dtype=np.int64), truncated)

    def plan(self, lengths: Sequence[int]) -> list[np.ndarray | PackedBatch]:
        """Batches to run: row indices of a padded batch, or inputs per row of a packed one.

        With several workers, small inputs are cut so every worker gets a share.
        """
        budget = self.max_batch_tokens
        if self.workers > 1:
            budget = min(budget, max(1, math.ceil(sum(lengths) / self.workers)))
        padded = plan_batches(lengths, budget, multiple=self.pad_multiple)
        if not self.packing:
            return padded
        # Packed rows hold every token at least once, so a worker gets at least its share of them:
        # when the padded plan is within the margin of that, packing cannot pay (bulk input).
        padded_load = _makespan([padded_slots(lengths, [b], self.pad_multiple) for b in padded], self.workers)
        if padded_load <= PACK_WHEN_PADDING_OVER * sum(lengths) / self.workers:
            return padded
        width = round_up(max(max(lengths), PACK_MIN_WIDTH), 32)
        rows = pack_rows(lengths, width)
        n_batches = max(math.ceil(len(rows) * width / self.max_batch_tokens), min(self.workers, len(rows)))
        packed = [PackedBatch([rows[r] for r in part], width) for part in np.array_split(np.arange(len(rows)), n_batches)]
        # Compare the slowest worker's token slots, which set the call's latency: a lone article's
        # padded batches come in uneven sizes that leave one worker with most of the work.
        packed_load = _makespan([len(b.rows) * width for b in packed], self.workers)
        return packed if padded_load > PACK_WHEN_PADDING_OVER * packed_load else padded

    def _run(self, encoded: Encoded, batch: np.ndarray | PackedBatch) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
        """Input indices, their logits, and the token slots the batch took."""
        if isinstance(batch, np.ndarray):
            arrays = pad_batch(
                [encoded.ids[i] for i in batch], [encoded.type_ids[i] for i in batch], self.pad_id, self.pad_multiple
            )
            idx = batch
        else:
            arrays, idx = pack_batch(encoded.ids, encoded.type_ids, batch.rows, batch.width, self.pad_id)
        return idx, {h: v[:len(idx)] for h, v in self.engine(arrays).items()}, arrays["input_ids"].size

    def logits(self, encoded: Encoded) -> dict[str, np.ndarray]:
        """Raw logits per head for every window, in window order."""
        lengths = [len(x) for x in encoded.ids]
        batches = self.plan(lengths)
        if self._pool is not None and len(batches) > 1:
            results = self._pool.map(lambda b: self._run(encoded, b), batches)
        else:
            results = (self._run(encoded, b) for b in batches)
        out: dict[str, np.ndarray] = {}
        for idx, logits, slots in results:
            for h, v in logits.items():
                out.setdefault(h, np.zeros((len(lengths), v.shape[1]), dtype=np.float32))[idx] = v
            self.stats["batches"] += 1
            self.stats["tokens"] += int(sum(lengths[i] for i in idx))
            self.stats["padded_tokens"] += slots
        return out

    def predict_proba(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Calibrated probabilities per head, shape (len(texts), n_labels), in input order."""
        if len(texts) == 0:
            return {h: np.zeros((0, len(labels)), dtype=np.float32) for h, labels in self.heads.items()}
        return self.predict_encoded(self.encode(texts, pairs))

    def predict_encoded(self, encoded: Encoded) -> dict[str, np.ndarray]:
        """Calibrated probabilities per head for already tokenized inputs (see `encode`)."""
        n = encoded.n_inputs
        if encoded.n_truncated:
            self.stats["truncated"] += encoded.n_truncated
            logger.warning(
                "%d of %d inputs exceeded max_length=%d tokens and were %s",
                encoded.n_truncated, n, self.manifest.max_length,
                "scored as overlapping windows" if self.long_text == "window" else "truncated (serve.long_text=window scores them whole)",
            )
        self.stats["sentences"] += n
        if n == 0:
            return {h: np.zeros((0, len(labels)), dtype=np.float32) for h, labels in self.heads.items()}
        probs = {}
        counts = np.bincount(encoded.owner, minlength=n).astype(np.float32)[:, None]
        for h, z in self.logits(encoded).items():
            p = softmax(z, self.manifest.heads[h].temperature)
            if len(z) == n:
                probs[h] = p
            else:  # windows: average each input's window probabilities
                acc = np.zeros((n, p.shape[1]), dtype=np.float64)
                np.add.at(acc, encoded.owner, p)
                probs[h] = (acc / counts).astype(np.float32)
        return probs

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Ray Data map_batches interface: adds '<head>_probs' columns for the 'text' column."""
        probs = self.predict_proba(list(batch["text"]), list(batch["pair"]) if "pair" in batch else None)
        return {**batch, **{f"{h}_probs": p for h, p in probs.items()}}
