"""Fine-tune the shared encoder with one head per task and write an artifact.

Reads top to bottom like transformers' run_classification.py: config, seed,
data, labels, model, tokenize, train (best dev epoch kept), calibrate,
evaluate with baselines, write the artifact.
"""

from __future__ import annotations

import logging
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

import stancekit
from stancekit.config import StancekitConfig
from stancekit.errors import DataError
from stancekit.model.artifact import HeadSpec, Manifest, save_artifact
from stancekit.model.encoder import load_pretrained_encoder, load_tokenizer
from stancekit.model.heads import MultiHeadClassifier
from stancekit.model.probs import softmax
from stancekit.training.calibration import fit_temperature
from stancekit.training.card import render_card
from stancekit.training.data import IGNORE, LabelledData, load_labelled
from stancekit.training.metrics import (
    evaluate_predictions,
    expected_calibration_error,
    selection_score,
)

logger = logging.getLogger(__name__)
CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainResult:
    """Where the artifact went and what it scored."""

    artifact: Path
    metrics: dict[str, Any]
    seconds: float


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch; deterministic kernels where torch offers them."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_splits(config: StancekitConfig) -> tuple[LabelledData, LabelledData, LabelledData | None]:
    """Train, dev and (optional) test rows, validated; training filters from the config applied."""
    train = load_labelled(config.data.train, config)
    dev = load_labelled(config.data.dev, config)
    test = load_labelled(config.data.test, config) if config.data.test else None
    keep = np.ones(len(train), dtype=bool)
    for column, excluded in (("source", config.data.exclude_sources), ("origin", config.data.exclude_origins)):
        if excluded:
            values = train.meta.get(column)
            if values is None:
                raise DataError(f"{train.path}: data.exclude_{column}s is set but rows have no {column!r} field")
            keep &= ~np.isin(np.array([str(v) for v in values]), excluded)
    rng = np.random.default_rng(config.training.seed)
    if config.data.max_partial_rows is not None:
        partial = np.zeros(len(train), dtype=bool)
        for y in train.labels.values():
            partial |= y == IGNORE
        partial_idx = np.flatnonzero(keep & partial)
        if len(partial_idx) > config.data.max_partial_rows:
            keep[partial_idx] = False
            keep[rng.choice(partial_idx, config.data.max_partial_rows, replace=False)] = True
    idx = np.flatnonzero(keep)
    if config.data.max_train_rows and len(idx) > config.data.max_train_rows:
        idx = np.sort(rng.choice(idx, config.data.max_train_rows, replace=False))
    for key, times in config.data.oversample.items():
        column, value = key.split("=", 1)
        values = train.meta.get(column)
        if values is None:
            raise DataError(f"{train.path}: data.oversample uses column {column!r}, which the rows do not have")
        match = idx[np.array([str(values[i]) == value for i in idx], dtype=bool)]
        idx = np.sort(np.concatenate([idx] + [match] * (times - 1)))
    train = train.subset(idx)
    for h, y in train.labels.items():
        if not (y != IGNORE).any():
            raise DataError(f"{config.data.train}: no training row has a {h!r} label after filtering")
    return train, dev, test


def tokenize(data: LabelledData, tokenizer: Any, max_length: int) -> list[list[int]]:
    """Token ids per row (truncated to max_length), without padding."""
    enc = tokenizer(data.texts, data.pairs, truncation=True, max_length=max_length, padding=False)
    return enc


def collate(enc: Any, idx: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """Dynamic padding of the rows `idx` to their longest length."""
    ids = [enc["input_ids"][i] for i in idx]
    width = max(map(len, ids))
    out = {
        "input_ids": torch.full((len(ids), width), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(ids), width), dtype=torch.long),
    }
    has_types = "token_type_ids" in enc
    if has_types:
        out["token_type_ids"] = torch.zeros((len(ids), width), dtype=torch.long)
    for r, i in enumerate(idx):
        n = len(enc["input_ids"][i])
        out["input_ids"][r, :n] = torch.tensor(enc["input_ids"][i])
        out["attention_mask"][r, :n] = 1
        if has_types:
            out["token_type_ids"][r, :n] = torch.tensor(enc["token_type_ids"][i])
    return out


def epoch_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, window: int = 50) -> list[np.ndarray]:
    """Shuffled batches of similar length: sort within windows of `window` batches, shuffle batch order.

    Less padding than plain shuffling (faster epochs) while batches stay random. The rng is
    seeded per (seed, epoch), so a resumed run sees the same batches.
    """
    order = rng.permutation(len(lengths))
    span = batch_size * window
    batches = []
    for start in range(0, len(order), span):
        chunk = order[start:start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def class_weights(y: np.ndarray, n_labels: int) -> torch.Tensor:
    """Inverse-frequency weights (mean 1 over present classes) from labelled training rows."""
    counts = np.bincount(y[y != IGNORE], minlength=n_labels).astype(float)
    w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def build_model(config: StancekitConfig) -> MultiHeadClassifier:
    """Pretrained encoder plus freshly initialised heads (seeded)."""
    encoder = load_pretrained_encoder(config.model.base)
    heads = {h: len(spec.labels) for h, spec in config.heads.items()}
    return MultiHeadClassifier(encoder, heads, pooling=config.model.pooling, dropout=config.model.dropout)


def build_optimizer(model: MultiHeadClassifier, config: StancekitConfig, total_steps: int):
    """AdamW (no decay on biases/LayerNorm; separate head learning rate) with linear warm-up and decay."""
    t = config.training
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        lr = t.head_learning_rate if name.startswith("heads.") else t.learning_rate
        decay = 0.0 if (p.ndim == 1 or "LayerNorm" in name or "norm" in name.lower()) else t.weight_decay
        groups.setdefault((lr, decay), []).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(total_steps * t.warmup_ratio), total_steps)
    return optimizer, scheduler


@torch.inference_mode()
def predict_logits(
    model: MultiHeadClassifier, enc: Any, pad_id: int, batch_size: int = 128
) -> dict[str, np.ndarray]:
    """Logits per head for every encoded row, in row order (length-sorted batches inside)."""
    model.eval()
    n = len(enc["input_ids"])
    order = np.argsort([-len(x) for x in enc["input_ids"]], kind="stable")
    out: dict[str, np.ndarray] = {}
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        logits = model(**collate(enc, idx, pad_id))
        for h, v in logits.items():
            out.setdefault(h, np.zeros((n, v.shape[1]), dtype=np.float32))[idx] = v.float().numpy()
    return out



def evaluate_logits(
    logits: dict[str, np.ndarray], data: LabelledData, config: StancekitConfig
) -> dict[str, Any]:
    """Metrics of argmax predictions, sliced by source and origin when present."""
    preds = {h: v.argmax(1) for h, v in logits.items()}
    slices = {k: data.meta[k] for k in ("source", "origin") if k in data.meta}
    return evaluate_predictions(data.labels, preds, {h: s.labels for h, s in config.heads.items()}, slices)


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train_epochs(
    config: StancekitConfig,
    model: MultiHeadClassifier,
    train_enc: Any,
    train: LabelledData,
    dev_enc: Any,
    dev: LabelledData,
    pad_id: int,
    work_dir: Path,
    resume: bool,
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Epoch loop with masked multi-head loss and early stopping; returns the best state and history."""
    t = config.training
    n = len(train)
    steps_per_epoch = math.ceil(n / t.batch_size)
    optimizer, scheduler = build_optimizer(model, config, steps_per_epoch * t.epochs)
    losses = {
        h: nn.CrossEntropyLoss(
            weight=class_weights(train.labels[h], len(spec.labels)) if t.class_weights else None,
            ignore_index=IGNORE,
        )
        for h, spec in config.heads.items()
    }
    labels = {h: torch.tensor(y) for h, y in train.labels.items()}
    lengths = np.array([len(x) for x in train_enc["input_ids"]])
    history: list[dict[str, Any]] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_score, bad_epochs, start_epoch = -1.0, 0, 0
    ckpt_path = work_dir / CHECKPOINT
    if resume and ckpt_path.is_file():
        # Our own checkpoint, written by this function in this run directory.
        ckpt = torch.load(ckpt_path, weights_only=True)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        best_state, best_score, bad_epochs = ckpt["best_state"], ckpt["best_score"], ckpt["bad_epochs"]
        history, start_epoch = ckpt["history"], ckpt["epoch"] + 1
        torch.set_rng_state(ckpt["torch_rng"])
        logger.info("resumed from %s after epoch %d", ckpt_path, ckpt["epoch"] + 1)
    for epoch in range(start_epoch, t.epochs):
        if bad_epochs >= t.patience:
            break
        model.train()
        batches = epoch_batches(lengths, t.batch_size, np.random.default_rng([t.seed, epoch]))
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{t.epochs}", unit="step", leave=False,
                   mininterval=2.0 if sys.stderr.isatty() else 30.0)
        running = 0.0
        for step, idx in enumerate(bar):
            logits = model(**collate(train_enc, idx, pad_id))
            loss = torch.zeros(())
            for h, spec in config.heads.items():
                y = labels[h][idx]
                if (y != IGNORE).any():
                    loss = loss + spec.loss_weight * losses[h](logits[h], y)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.max_grad_norm)
            optimizer.step()
            scheduler.step()
            running = 0.9 * running + 0.1 * loss.item() if step else loss.item()
            bar.set_postfix(loss=f"{running:.3f}", refresh=False)
        bar.close()
        dev_metrics = evaluate_logits(predict_logits(model, dev_enc, pad_id), dev, config)
        score = selection_score(dev_metrics, t.selection_metric)
        history.append({"epoch": epoch + 1, "train_loss": running, "dev": dev_metrics, "score": score})
        per_head = ", ".join(f"{h} {m['macro_f1']:.3f}" for h, m in dev_metrics["heads"].items() if m["macro_f1"] is not None)
        improved = score > best_score
        tqdm.write(f"epoch {epoch + 1}: loss {running:.3f}  dev macro-F1 {per_head}{'  (best)' if improved else ''}")
        if improved:
            best_score, bad_epochs = score, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        _save_checkpoint(
            ckpt_path,
            {
                "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "best_state": best_state, "best_score": best_score,
                "bad_epochs": bad_epochs, "history": history, "torch_rng": torch.get_rng_state(),
            },
        )
    assert best_state is not None
    return best_state, history


def train(
    config: StancekitConfig,
    out_dir: str | Path,
    resume: bool = False,
    work_dir: str | Path | None = None,
) -> TrainResult:
    """Train per `config`, write the artifact to `out_dir`, and return its metrics."""
    started = time.time()
    out_dir = Path(out_dir)
    work = Path(work_dir) if work_dir else out_dir.with_name(out_dir.name + ".work")
    if not resume and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    t = config.training
    # 1. Threads and seed.
    if t.threads:
        torch.set_num_threads(t.threads)
    set_seed(t.seed)
    # 2. Data, validated before any training starts.
    train_data, dev_data, test_data = load_splits(config)
    logger.info("rows: train %d, dev %d, test %d", len(train_data), len(dev_data), len(test_data or []))
    # 3. Tokenizer and model.
    tokenizer = load_tokenizer(config.model.base)
    pad_id = tokenizer.pad_token_id or 0
    model = build_model(config)
    # 4. Tokenize once.
    encs = {
        name: tokenize(d, tokenizer, config.model.max_length)
        for name, d in (("train", train_data), ("dev", dev_data), ("test", test_data)) if d is not None
    }
    # 5. Train, keep the best dev epoch.
    best_state, history = train_epochs(
        config, model, encs["train"], train_data, encs["dev"], dev_data, pad_id, work, resume
    )
    model.load_state_dict(best_state)
    # 6. Calibrate on dev, evaluate dev and test.
    dev_logits = predict_logits(model, encs["dev"], pad_id)
    temperatures = {h: 1.0 for h in config.heads}
    if t.calibrate:
        temperatures = {h: fit_temperature(dev_logits[h], dev_data.labels[h]) for h in config.heads}
    metrics: dict[str, Any] = {
        "name": config.name,
        "rows": {"train": len(train_data), "dev": len(dev_data), "test": len(test_data) if test_data else 0},
        "history": [{k: v for k, v in h.items() if k != "dev"} for h in history],
        "best_epoch": max(history, key=lambda h: h["score"])["epoch"],
        "temperatures": temperatures,
        "splits": {},
    }
    for split, data in (("dev", dev_data), ("test", test_data)):
        if data is None:
            continue
        logits = dev_logits if split == "dev" else predict_logits(model, encs[split], pad_id)
        m = evaluate_logits(logits, data, config)
        m["ece"] = {
            h: {
                "before": expected_calibration_error(softmax(logits[h]), data.labels[h]),
                "after": expected_calibration_error(softmax(logits[h], temperatures[h]), data.labels[h]),
            }
            for h in config.heads
        }
        metrics["splits"][split] = {"model": m}
    # 7. Baselines in the same run.
    if t.baselines:
        from stancekit.training.compare import run_baselines

        evals = {"dev": dev_data} | ({"test": test_data} if test_data is not None else {})
        for split, rows in run_baselines(config, train_data, evals).items():
            metrics["splits"][split].update(rows)
    metrics["train_seconds"] = round(time.time() - started, 1)
    # 8. Artifact.
    manifest = Manifest(
        stancekit_version=stancekit.__version__,
        name=config.name,
        base_model=config.model.base,
        max_length=config.model.max_length,
        pooling=config.model.pooling,
        text_pair=config.data.text_pair_field is not None,
        heads={
            h: HeadSpec(
                labels=spec.labels, field=config.head_field(h), temperature=temperatures[h],
                abstain_threshold=spec.abstain_threshold,
            )
            for h, spec in config.heads.items()
        },
        profile=config.profile.model_dump(),
        training_config=config.to_dict(),
    )
    save_artifact(out_dir, model, tokenizer, manifest, metrics, render_card(manifest, metrics))
    shutil.rmtree(work, ignore_errors=True)
    return TrainResult(out_dir, metrics, time.time() - started)
