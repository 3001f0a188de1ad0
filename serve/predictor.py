"""Predictor: artifact loaded once; texts in, calibrated probabilities per head out, in input order.

Tokenizes with `tokenizers` (tokenizer.json), plans length-sorted token-budget
batches, calls the engine (the hot path), and restores input order by index.
The same object works in-process and as a Ray Data `map_batches` callable.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stancekit.errors import ConfigError, RequestError
from stancekit.model.artifact import TOKENIZER_DIR, Manifest, verify_artifact
from stancekit.model.probs import softmax
from stancekit.serve.batching import pad_batch, plan_batches
from stancekit.serve.engines import make_engine

logger = logging.getLogger(__name__)


@dataclass
class Encoded:
    """Token ids per model input; `owner[k]` is the input text that window k belongs to."""

    ids: list[list[int]]
    type_ids: list[list[int]]
    owner: np.ndarray
    n_truncated: int



class Predictor:
    """Calibrated per-head probabilities for sentences, from a verified artifact.

    Parameters
    ----------
    artifact : path
        Artifact directory written by `stancekit train`.
    backend : str
        "torch" (fp32), "torch-bf16", "torch-int8", "onnx" or "onnx-int8".
    max_batch_tokens : int
        Token budget per batch (rows x padded length).
    long_text : {"truncate", "window"}
        Inputs longer than the model's max length are truncated (counted and logged) or
        scored as overlapping windows whose probabilities are averaged.
    """

    def __init__(
        self,
        artifact: str | Path,
        backend: str = "torch",
        threads: int | None = None,
        max_batch_tokens: int = 4096,
        long_text: str = "truncate",
        window_stride: int = 32,
    ):
        from tokenizers import Tokenizer

        if long_text not in ("truncate", "window"):
            raise ConfigError(f"long_text must be 'truncate' or 'window'; got {long_text!r}")
        if max_batch_tokens < 1:
            raise ConfigError(f"max_batch_tokens must be >= 1; got {max_batch_tokens}")
        self.artifact = verify_artifact(artifact)
        self.manifest: Manifest = self.artifact.manifest
        self.backend = backend
        self.max_batch_tokens = max_batch_tokens
        self.long_text = long_text
        self.tokenizer = Tokenizer.from_file(str(self.artifact.path / TOKENIZER_DIR / "tokenizer.json"))
        self.tokenizer.no_padding()
        max_len = self.manifest.max_length
        stride = min(window_stride, max_len // 2) if long_text == "window" else 0
        self.tokenizer.enable_truncation(max_len, stride=stride)
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        self.engine = make_engine(self.artifact, backend, threads)
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
        encodings = self.tokenizer.encode_batch(inputs)
        ids, types, owner, truncated = [], [], [], 0
        for i, enc in enumerate(encodings):
            windows = [enc] + (list(enc.overflowing) if self.long_text == "window" else [])
            truncated += bool(enc.overflowing)
            for w in windows:
                ids.append(w.ids)
                types.append(w.type_ids)
                owner.append(i)
        return Encoded(ids, types, np.asarray(owner, dtype=np.int64), truncated)

    def logits(self, encoded: Encoded) -> dict[str, np.ndarray]:
        """Raw logits per head for every window, in window order."""
        lengths = [len(x) for x in encoded.ids]
        out: dict[str, np.ndarray] = {}
        for idx in plan_batches(lengths, self.max_batch_tokens):
            batch = pad_batch([encoded.ids[i] for i in idx], [encoded.type_ids[i] for i in idx], self.pad_id)
            for h, v in self.engine(batch).items():
                out.setdefault(h, np.zeros((len(lengths), v.shape[1]), dtype=np.float32))[idx] = v
            self.stats["batches"] += 1
            self.stats["tokens"] += int(sum(lengths[i] for i in idx))
            self.stats["padded_tokens"] += len(idx) * max(lengths[i] for i in idx)
        return out

    def predict_proba(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Calibrated probabilities per head, shape (len(texts), n_labels), in input order."""
        n = len(texts)
        if n == 0:
            return {h: np.zeros((0, len(labels)), dtype=np.float32) for h, labels in self.heads.items()}
        encoded = self.encode(texts, pairs)
        if encoded.n_truncated:
            self.stats["truncated"] += encoded.n_truncated
            logger.warning(
                "%d of %d inputs exceeded max_length=%d tokens and were %s",
                encoded.n_truncated, n, self.manifest.max_length,
                "scored as overlapping windows" if self.long_text == "window" else "truncated (serve.long_text=window scores them whole)",
            )
        self.stats["sentences"] += n
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
