"""Baselines evaluated in the same run as the fine-tuned model, on the same dev and test rows."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.dummy import DummyClassifier

from stancekit.config import StancekitConfig
from stancekit.model.baselines import (
    SENTIMENT_LABELS,
    VaderSentiment,
    frozen_embedding_logreg,
    tfidf_logreg,
)
from stancekit.training.data import IGNORE, LabelledData
from stancekit.training.metrics import head_metrics


def _inputs(data: LabelledData) -> list[str]:
    if data.pairs is None:
        return data.texts
    return [f"{p} [SEP] {t}" for t, p in zip(data.texts, data.pairs)]


def frozen_embeddings(config: StancekitConfig, datasets: list[LabelledData]) -> list[np.ndarray]:
    """Mean-pooled embeddings of the untrained base encoder for each dataset."""
    import torch

    from stancekit.model.encoder import load_pretrained_encoder, load_tokenizer
    from stancekit.model.heads import mean_pool

    tokenizer = load_tokenizer(config.model.base)
    encoder = load_pretrained_encoder(config.model.base).eval()
    out = []
    with torch.inference_mode():
        for data in datasets:
            chunks = []
            for start in range(0, len(data), 128):
                sl = slice(start, start + 128)
                enc = tokenizer(
                    data.texts[sl], None if data.pairs is None else data.pairs[sl], truncation=True,
                    max_length=config.model.max_length, padding=True, return_tensors="pt",
                )
                hidden = encoder(**enc).last_hidden_state
                chunks.append(mean_pool(hidden, enc["attention_mask"]).numpy())
            out.append(np.concatenate(chunks))
    return out


def run_baselines(
    config: StancekitConfig, train: LabelledData, splits: dict[str, LabelledData]
) -> dict[str, dict[str, Any]]:
    """{split: {baseline_name: {head: metrics}}} for majority, TF-IDF+LR, VADER and frozen-encoder+LR."""
    seed = config.training.seed
    results: dict[str, dict[str, Any]] = {s: {} for s in splits}
    embeddings = dict(zip(["train", *splits], frozen_embeddings(config, [train, *splits.values()])))
    for h, spec in config.heads.items():
        have = train.labels[h] != IGNORE
        y = train.labels[h][have]
        x_text = [t for t, k in zip(_inputs(train), have) if k]
        fitted = {
            "majority": (DummyClassifier(strategy="most_frequent").fit(np.zeros((len(y), 1)), y), "none"),
            "tfidf_lr": (tfidf_logreg(seed).fit(x_text, y), "text"),
            "frozen_encoder_lr": (frozen_embedding_logreg(seed).fit(embeddings["train"][have], y), "embedding"),
        }
        if tuple(spec.labels) == SENTIMENT_LABELS or set(spec.labels) == set(SENTIMENT_LABELS):
            fitted["vader"] = (VaderSentiment(tuple(spec.labels)).fit(x_text), "text")
        for split, data in splits.items():
            for name, (clf, kind) in fitted.items():
                x = {"none": np.zeros((len(data), 1)), "text": _inputs(data), "embedding": embeddings[split]}[kind]
                pred = clf.predict(x)
                results[split].setdefault(name, {})[h] = head_metrics(data.labels[h], np.asarray(pred), spec.labels)
    return results
