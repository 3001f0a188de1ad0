"""Backend parity: each backend's predictions against torch fp32 on a labelled split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stancekit.serve.predictor import Predictor
from stancekit.training.metrics import head_metrics

MIN_AGREEMENT = 0.99
MAX_F1_DROP = 0.005


def _gold(rows: list[dict[str, Any]], predictor: Predictor) -> dict[str, np.ndarray]:
    out = {}
    for h, spec in predictor.manifest.heads.items():
        index = {lab: i for i, lab in enumerate(spec.labels)}
        out[h] = np.array([index.get(r.get(spec.field) or "", -100) for r in rows])
    return out


def backend_parity(
    artifact: str | Path, data: str | Path, backends: list[str], threads: int | None = None
) -> list[dict[str, Any]]:
    """Per backend and head: label agreement with fp32, macro-F1, its difference, and pass/fail."""
    from stancekit.training.data import read_table

    rows = read_table(data)
    texts = [r["text"] for r in rows]
    reference = Predictor(artifact, backend="torch", threads=threads)
    gold = _gold(rows, reference)
    ref = {h: p.argmax(1) for h, p in reference.predict_proba(texts).items()}
    ref_f1 = {h: head_metrics(gold[h], ref[h], reference.heads[h])["macro_f1"] for h in ref}
    out = []
    for backend in backends:
        pred = Predictor(artifact, backend=backend, threads=threads)
        labels = {h: p.argmax(1) for h, p in pred.predict_proba(texts).items()}
        for h in labels:
            f1 = head_metrics(gold[h], labels[h], pred.heads[h])["macro_f1"]
            agreement = float((labels[h] == ref[h]).mean())
            drop = (ref_f1[h] or 0.0) - (f1 or 0.0)
            out.append({
                "backend": backend, "head": h, "n": len(texts), "agreement": agreement,
                "macro_f1": f1, "macro_f1_fp32": ref_f1[h], "f1_drop": drop,
                "passes": agreement >= MIN_AGREEMENT and drop <= MAX_F1_DROP,
            })
    return out


def render_parity(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of backend_parity results."""
    lines = [f"{'backend':12s} {'head':10s} {'agreement':>10s} {'macro-F1':>9s} {'fp32':>7s} {'drop':>7s}  verdict"]
    for r in rows:
        verdict = "passes" if r["passes"] else "FAILS (not recommended)"
        lines.append(
            f"{r['backend']:12s} {r['head']:10s} {r['agreement']:10.2%} {r['macro_f1']:9.4f} "
            f"{r['macro_f1_fp32']:7.4f} {100 * r['f1_drop']:+6.2f}pt  {verdict}"
        )
    return "\n".join(lines)
