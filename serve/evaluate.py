"""Evaluate an artifact on labelled rows: metrics with bootstrap intervals, calibration, slices, articles.

`evaluate()` scores a labelled file with the artifact's Predictor, computes every
number of the report (returned as a JSON-able dict and written to metrics.json),
and hands the dict to `report_html.write_report` for report.html and report.md.
The functions below it only compute numbers; plotting and rendering live in
report_html.py.
"""

from __future__ import annotations

import json
import re
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from stancekit.config import StancekitConfig, config_from_dict
from stancekit.model.artifact import METRICS, Manifest
from stancekit.training.data import IGNORE, LabelledData, load_labelled
from stancekit.training.metrics import expected_calibration_error, head_metrics

SLICE_COLUMNS = ("source", "country", "year", "origin")
MISSING = "(missing)"


# --- reading ------------------------------------------------------------------------------------


def artifact_config(artifact_dir: Path, manifest: Manifest) -> StancekitConfig:
    """The training config stored in the manifest: it names the text column and each head's label column."""
    return config_from_dict(manifest.training_config, where=f"{artifact_dir}/manifest.json training_config")


def load_eval_data(path: str | Path, config: StancekitConfig) -> LabelledData:
    """Labelled rows of a JSONL/CSV/Parquet file, checked against the artifact's heads (a head may be absent)."""
    return load_labelled(path, config)


# --- point scores and bootstrap ---------------------------------------------------------------


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """Counts with gold labels as rows and predictions as columns."""
    codes = y_true.astype(np.int64) * n_labels + y_pred.astype(np.int64)
    return np.bincount(codes, minlength=n_labels * n_labels).reshape(n_labels, n_labels)


def scores_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 per class, macro-F1 and accuracy from (..., K, K) confusion counts.

    Zero denominators give 0, as scikit-learn does with zero_division=0, so the
    bootstrap agrees with `training.metrics.head_metrics` on the full sample.
    """
    cm = cm.astype(np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    predicted, gold = cm.sum(-2), cm.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(gold > 0, tp / gold, 0.0)
        f1 = np.where(predicted + gold > 0, 2 * tp / (predicted + gold), 0.0)
        total = cm.sum((-2, -1))
        accuracy = np.where(total > 0, tp.sum(-1) / total, 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "macro_f1": f1.mean(-1), "accuracy": accuracy}


def bootstrap_scores(
    y_true: np.ndarray, y_pred: np.ndarray, n_labels: int, samples: int, seed: int
) -> dict[str, np.ndarray]:
    """Scores of `samples` resamples of the rows (with replacement, seeded); arrays lead with the sample axis."""
    rng = np.random.default_rng(seed)
    n = len(y_true)
    idx = rng.integers(0, n, size=(samples, n))
    codes = y_true[idx] * n_labels + y_pred[idx] + (np.arange(samples)[:, None] * n_labels * n_labels)
    cms = np.bincount(codes.ravel(), minlength=samples * n_labels * n_labels).reshape(samples, n_labels, n_labels)
    return scores_from_confusion(cms)


def _interval(value: float | None, draws: np.ndarray | None) -> dict[str, float | None]:
    if value is None or draws is None:
        return {"value": value, "ci_low": None, "ci_high": None}
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"value": float(value), "ci_low": float(low), "ci_high": float(high)}


def reliability_bins(probs: np.ndarray, y_true: np.ndarray, n_bins: int) -> list[dict[str, Any]]:
    """Equal-width confidence bins (the binning of `expected_calibration_error`): count, confidence, accuracy."""
    conf = probs.max(1)
    correct = probs.argmax(1) == y_true
    which = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    out = []
    for b in range(n_bins):
        m = which == b
        out.append({
            "low": b / n_bins, "high": (b + 1) / n_bins, "n": int(m.sum()),
            "confidence": float(conf[m].mean()) if m.any() else None,
            "accuracy": float(correct[m].mean()) if m.any() else None,
        })
    return out


def _example(data: LabelledData, i: int, labels: list[str], y: int, p: np.ndarray) -> dict[str, Any]:
    top = int(p.argmax())
    ids, sources = data.meta.get("id"), data.meta.get("source")
    return {
        "row": int(i), "id": ids[i] if ids else None, "text": data.texts[i], "source": sources[i] if sources else None,
        "gold": labels[y], "predicted": labels[top], "confidence": float(p[top]), "gold_probability": float(p[y]),
    }


def extreme_examples(data: LabelledData, head: str, probs: np.ndarray, labels: list[str], k: int) -> dict[str, list]:
    """The k most confident errors and the k least confident correct predictions of one head."""
    y = data.labels[head]
    rows = np.flatnonzero(y != IGNORE)
    conf, pred = probs[rows].max(1), probs[rows].argmax(1)
    wrong, right = pred != y[rows], pred == y[rows]
    errors = rows[wrong][np.argsort(-conf[wrong], kind="stable")][:k]
    unsure = rows[right][np.argsort(conf[right], kind="stable")][:k]
    return {
        "confident_errors": [_example(data, i, labels, int(y[i]), probs[i]) for i in errors],
        "uncertain_correct": [_example(data, i, labels, int(y[i]), probs[i]) for i in unsure],
    }


def head_report(
    data: LabelledData, head: str, probs: np.ndarray, labels: list[str], samples: int, seed: int, n_bins: int,
    n_examples: int,
) -> dict[str, Any]:
    """Every number of one head: scores with intervals, confusion, calibration, examples."""
    y = data.labels[head]
    keep = y != IGNORE
    yt, pred, p = y[keep], probs[keep].argmax(1), probs[keep]
    point = head_metrics(y, probs.argmax(1), labels)
    k = len(labels)
    draws = bootstrap_scores(yt, pred, k, samples, seed) if len(yt) and samples > 0 else None
    cm = confusion_counts(yt, pred, k)
    gold_totals = cm.sum(1, keepdims=True)
    per_class = {}
    for j, lab in enumerate(labels):
        pc = point["per_class"].get(lab, {})
        per_class[lab] = {
            m: _interval(pc.get(m), None if draws is None else draws[m][:, j]) for m in ("precision", "recall", "f1")
        } | {"support": int(pc.get("support", 0))}
    return {
        "labels": labels,
        "n": point["n"],
        "macro_f1": _interval(point["macro_f1"], None if draws is None else draws["macro_f1"]),
        "accuracy": _interval(point["accuracy"], None if draws is None else draws["accuracy"]),
        "per_class": per_class,
        "ece": expected_calibration_error(probs, y, n_bins) if len(yt) else None,
        "confusion": {
            "counts": cm.tolist(),
            "normalized": np.where(gold_totals > 0, cm / np.maximum(gold_totals, 1), 0.0).round(6).tolist(),
        },
        "reliability": reliability_bins(p, yt, n_bins) if len(yt) else [],
        "examples": extreme_examples(data, head, probs, labels, n_examples),
    }


# --- baselines, slices, articles --------------------------------------------------------------


def stored_baselines(
    artifact_dir: Path, config: StancekitConfig, data_path: Path, heads: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """This run beside the systems in the artifact's metrics.json, for the split that matches the data file."""
    path = artifact_dir / METRICS
    stored = json.loads(path.read_text()).get("splits", {}) if path.is_file() else {}
    split, match = None, "none"
    for name, configured in (("test", config.data.test), ("dev", config.data.dev)):
        if configured is not None and name in stored and Path(configured).resolve() == data_path.resolve():
            split, match = name, "same file"
            break
    if split is None and data_path.stem in stored:
        split, match = data_path.stem, "same file name"
    if split is None and stored:
        # Other rows than this file's, but still the best reference for what the baselines reach.
        split = "test" if "test" in stored else next(iter(stored))
    systems = {"model (this evaluation)": {h: {k: m[k]["value"] for k in ("macro_f1", "accuracy")} for h, m in heads.items()}}
    if split is not None:
        # The stored model first, so it sits next to this evaluation's row.
        for system, by_head in sorted(stored[split].items(), key=lambda kv: kv[0] != "model"):
            by_head = by_head["heads"] if system == "model" else by_head
            name = "model (artifact metrics.json)" if system == "model" else system
            systems[name] = {
                h: {"macro_f1": (by_head.get(h) or {}).get("macro_f1"), "accuracy": (by_head.get(h) or {}).get("accuracy")}
                for h in heads
            }
    notes = {
        "same file": f"stored numbers are from the artifact's {split} split, which is this data file",
        "same file name": f"stored numbers are from the artifact's {split} split (matched by file name only)",
        "none": f"no split in the artifact's metrics.json is this file: stored numbers are from its {split} split, "
        "other rows, so compare them with care",
    }
    if split is None:
        notes["none"] = f"{path} has no stored splits: baselines not shown"
    return {"split": split, "match": match, "note": notes[match], "systems": systems}


def slice_values(data: LabelledData, column: str) -> list[str] | None:
    """Per-row value of a metadata column as text; 'year' comes from 'date'. None if the column is absent."""
    if column == "year":
        dates = data.meta.get("date")
        if dates is None:
            return None
        years = [re.match(r"\s*(\d{4})", str(d)) if d is not None else None for d in dates]
        return [m.group(1) if m else MISSING for m in years]
    values = data.meta.get(column)
    if values is None:
        return None
    return [MISSING if v is None or str(v).strip() == "" else str(v) for v in values]


def slice_report(
    data: LabelledData, preds: dict[str, np.ndarray], heads: dict[str, list[str]], max_values: int
) -> dict[str, Any]:
    """Counts, macro-F1 and accuracy per head for each value of each metadata column present."""
    out = {}
    for column in SLICE_COLUMNS:
        values = slice_values(data, column)
        if values is None:
            continue
        arr = np.array(values)
        uniques, counts = np.unique(arr, return_counts=True)
        order = sorted(range(len(uniques)), key=lambda i: (-counts[i], uniques[i]))[:max_values]
        if column == "year":  # the most frequent years, shown in time order
            order.sort(key=lambda i: uniques[i])
        rows = []
        for i in order:
            m = arr == uniques[i]
            rows.append({
                "value": str(uniques[i]), "n": int(counts[i]),
                "heads": {
                    h: {k: hm[k] for k in ("n", "macro_f1", "accuracy")}
                    for h, labels in heads.items()
                    for hm in [head_metrics(data.labels[h][m], preds[h][m], labels)]
                },
            })
        out[column] = {"n_values": len(uniques), "values": rows}
    return out


def _spearman(x: list[float], y: list[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(x) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: undefined, reported as None
        rho = spearmanr(x, y).statistic
    return None if not np.isfinite(rho) else float(rho)


def article_report(
    data: LabelledData, probs: np.ndarray, labels: list[str], head: str, positive: str, negative: str,
    min_sentences: int,
) -> dict[str, Any] | None:
    """Per-article gold vs predicted label shares and lean (over rows with a gold label), and their Spearman rho."""
    doc_ids = data.meta.get("doc_id")
    if doc_ids is None:
        return None
    y = data.labels[head]
    lean = probs[:, labels.index(positive)] - probs[:, labels.index(negative)]
    pred = probs.argmax(1)
    groups: dict[str, list[int]] = {}
    for i, d in enumerate(doc_ids):
        if d is not None and str(d).strip() and y[i] != IGNORE:
            groups.setdefault(str(d), []).append(i)
    pos, neg = labels.index(positive), labels.index(negative)
    rows = []
    for doc, idx in groups.items():
        gold_share = np.bincount(y[idx], minlength=len(labels)) / len(idx)
        pred_share = np.bincount(pred[idx], minlength=len(labels)) / len(idx)
        rows.append({
            "doc_id": doc, "n": len(idx),
            "gold_shares": dict(zip(labels, gold_share.tolist())),
            "predicted_shares": dict(zip(labels, pred_share.tolist())),
            "gold_lean": float(gold_share[pos] - gold_share[neg]),
            "predicted_lean": float(lean[idx].mean()),
        })
    used = [r for r in rows if r["n"] >= min_sentences]
    return {
        "head": head, "positive_label": positive, "negative_label": negative, "min_sentences": min_sentences,
        "n_articles": len(rows), "n_used": len(used),
        "spearman_lean": _spearman([r["gold_lean"] for r in used], [r["predicted_lean"] for r in used]),
        "spearman_shares": {
            lab: _spearman([r["gold_shares"][lab] for r in used], [r["predicted_shares"][lab] for r in used])
            for lab in labels
        },
        "lean_mean_abs_error": float(np.mean([abs(r["gold_lean"] - r["predicted_lean"]) for r in used])) if used else None,
        "articles": sorted(rows, key=lambda r: (-r["n"], r["doc_id"])),
    }


# --- the whole evaluation ---------------------------------------------------------------------


def compute_metrics(
    artifact_dir: Path, manifest: Manifest, config: StancekitConfig, data: LabelledData,
    probs: dict[str, np.ndarray], *, samples: int = 1000, seed: int = 0, n_bins: int = 15, n_examples: int = 10,
    max_slice_values: int = 25, min_article_sentences: int = 2,
) -> dict[str, Any]:
    """All report numbers from probabilities already computed for `data` (reads only the artifact's metrics.json)."""
    head_labels = manifest.head_labels()
    preds = {h: p.argmax(1) for h, p in probs.items()}
    heads = {
        h: head_report(data, h, probs[h], labels, samples, seed, n_bins, n_examples)
        for h, labels in head_labels.items()
    }
    f1s = [m["macro_f1"]["value"] for m in heads.values() if m["macro_f1"]["value"] is not None]
    settings = manifest.profile
    lean_head = settings.get("lean_head")
    articles = None
    if lean_head in head_labels:
        articles = article_report(
            data, probs[lean_head], head_labels[lean_head], lean_head, settings["lean_positive"],
            settings["lean_negative"], min_article_sentences,
        )
    return {
        "artifact": {"path": str(artifact_dir), "name": manifest.name, "base_model": manifest.base_model},
        "data": {"path": str(data.path), "rows": len(data)},
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settings": {"bootstrap_samples": samples, "seed": seed, "calibration_bins": n_bins, "interval": "95% percentile"},
        "mean_macro_f1": float(np.mean(f1s)) if f1s else None,
        "heads": heads,
        "baselines": stored_baselines(artifact_dir, config, data.path, heads),
        "slices": slice_report(data, preds, head_labels, max_slice_values),
        "articles": articles,
    }


def evaluate(
    artifact: str | Path, data_path: str | Path, out_dir: str | Path, *, backend: str | None = None,
    samples: int = 1000, seed: int = 0, n_examples: int = 10,
) -> dict[str, Any]:
    """Score labelled data with the artifact; write metrics.json, report.html and report.md; return the metrics."""
    from stancekit.serve.predictor import Predictor
    from stancekit.serve.report_html import write_report

    predictor = Predictor(artifact, backend=backend)
    artifact_dir, manifest = predictor.artifact.path, predictor.manifest
    config = artifact_config(artifact_dir, manifest)
    data = load_eval_data(data_path, config)
    probs = predictor.predict_proba(data.texts, data.pairs)
    metrics = compute_metrics(artifact_dir, manifest, config, data, probs, samples=samples, seed=seed, n_examples=n_examples)
    metrics["settings"]["backend"] = backend
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_report(metrics, out)
    return metrics
