"""Classification metrics per head, per source slice, and calibration (ECE)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from stancekit.training.data import IGNORE


def head_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Macro-F1, accuracy and per-class precision/recall/F1 over rows that have a gold label."""
    keep = y_true != IGNORE
    yt, yp = y_true[keep], y_pred[keep]
    ids = list(range(len(labels)))
    if len(yt) == 0:
        return {"n": 0, "macro_f1": None, "accuracy": None, "per_class": {}}
    p, r, f, s = precision_recall_fscore_support(yt, yp, labels=ids, zero_division=0)
    return {
        "n": int(len(yt)),
        "macro_f1": float(f1_score(yt, yp, labels=ids, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(yt, yp)),
        "per_class": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, lab in enumerate(labels)
        },
    }


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """ECE with equal-width confidence bins over rows with a gold label."""
    keep = y_true != IGNORE
    probs, y_true = probs[keep], y_true[keep]
    if len(y_true) == 0:
        return float("nan")
    conf = probs.max(1)
    correct = (probs.argmax(1) == y_true).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def evaluate_predictions(
    labels: dict[str, np.ndarray],
    preds: dict[str, np.ndarray],
    head_labels: dict[str, list[str]],
    slices: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """Metrics per head, their mean macro-F1, and macro-F1 per value of each slice column."""
    out: dict[str, Any] = {"heads": {}}
    for h, names in head_labels.items():
        out["heads"][h] = head_metrics(labels[h], preds[h], names)
    f1s = [m["macro_f1"] for m in out["heads"].values() if m["macro_f1"] is not None]
    out["mean_macro_f1"] = float(np.mean(f1s)) if f1s else None
    for column, values in (slices or {}).items():
        arr = np.array(["" if v is None else str(v) for v in values])
        out.setdefault("slices", {})[column] = {
            str(value): {
                h: head_metrics(labels[h][arr == value], preds[h][arr == value], names)["macro_f1"]
                for h, names in head_labels.items()
            }
            | {"n": int((arr == value).sum())}
            for value in sorted(set(arr))
        }
    return out


def selection_score(metrics: dict[str, Any], metric: str) -> float:
    """The dev number that picks the best epoch (mean_macro_f1 or '<head>_macro_f1')."""
    if metric == "mean_macro_f1":
        return metrics["mean_macro_f1"] or 0.0
    head = metric.removesuffix("_macro_f1")
    return metrics["heads"][head]["macro_f1"] or 0.0
