"""Model card (artifact README.md) from the manifest and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stancekit.model.artifact import Manifest


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def metrics_table(split_metrics: dict[str, Any], heads: list[str]) -> list[str]:
    """Markdown rows: one per system (model first, then baselines), macro-F1 and accuracy per head."""
    header = "| system | " + " | ".join(f"{h} macro-F1 | {h} acc" for h in heads) + " |"
    lines = [header, "|" + "---|" * (1 + 2 * len(heads))]
    for system, by_head in split_metrics.items():
        if system == "model":
            by_head = by_head["heads"]
        cells = []
        for h in heads:
            m = by_head.get(h) or {}
            cells += [_fmt(m.get("macro_f1")), _fmt(m.get("accuracy"))]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return lines


def render_card(manifest: Manifest, metrics: dict[str, Any]) -> str:
    """Markdown model card: what it is, labels, data, metrics beside baselines, calibration, limits."""
    heads = list(manifest.heads)
    cfg = manifest.training_config
    out = [
        f"# stancekit model `{manifest.name}`",
        "",
        f"Base encoder: `{manifest.base_model}`, max length {manifest.max_length}, {manifest.pooling} pooling; "
        f"best epoch {metrics.get('best_epoch')}; trained in {metrics.get('train_seconds')} s.",
        "",
        "## Heads",
        "",
    ]
    for h, spec in manifest.heads.items():
        out.append(f"- `{h}` (column `{spec.field}`): {', '.join(spec.labels)}; temperature {spec.temperature:.3f}")
    rows = metrics.get("rows", {})
    out += [
        "",
        "## Data",
        "",
        f"train `{cfg['data']['train']}` ({rows.get('train')} rows), dev `{cfg['data']['dev']}` ({rows.get('dev')}), "
        f"test `{cfg['data']['test']}` ({rows.get('test')}).",
        "",
    ]
    for split, sm in metrics.get("splits", {}).items():
        out += [f"## Metrics on {split}", ""] + metrics_table(sm, heads) + [""]
        for h in heads:
            per_class = sm["model"]["heads"][h].get("per_class", {})
            if per_class:
                out += [f"Per class, {h}:", "", "| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
                out += [
                    f"| {lab} | {_fmt(m['precision'])} | {_fmt(m['recall'])} | {_fmt(m['f1'])} | {m['support']} |"
                    for lab, m in per_class.items()
                ]
                out.append("")
        ece = sm["model"].get("ece", {})
        if ece:
            out.append(
                "Calibration (ECE, 15 bins): "
                + "; ".join(f"{h} {_fmt(v['before'])} → {_fmt(v['after'])}" for h, v in ece.items())
            )
            out.append("")
        for column, values in sm["model"].get("slices", {}).items():
            out += [f"By {column} (macro-F1):", ""]
            out += [f"- {v}: n={m['n']}, " + ", ".join(f"{h} {_fmt(m.get(h))}" for h in heads) for v, m in values.items()]
            out.append("")
    if "leave_one_source_out" in metrics:
        out += [
            "## Leave one source out",
            "",
            "Each row: a model trained without that source (same config), evaluated on the source's dev+test rows, "
            "beside this model's macro-F1 on the same source in test (in distribution). A large drop means the "
            "model learned a source's style rather than stance.",
            "",
            "| held-out source | rows | stance macro-F1 held out | stance macro-F1 in distribution "
            "| TF-IDF+LR stance held out | sentiment held out | sentiment in distribution |",
            "|---|---|---|---|---|---|---|",
        ]
        slices = metrics.get("splits", {}).get("test", {}).get("model", {}).get("slices", {}).get("source", {})
        for src, m in metrics["leave_one_source_out"].items():
            ind = slices.get(src, {})
            out.append(
                f"| {src} | {m.get('n_eval')} | {_fmt(m['macro_f1'].get('stance'))} | {_fmt(ind.get('stance'))} "
                f"| {_fmt(m.get('baselines', {}).get('tfidf_lr', {}).get('stance'))} "
                f"| {_fmt(m['macro_f1'].get('sentiment'))} | {_fmt(ind.get('sentiment'))} |"
            )
        out.append("")
    if "ablations" in metrics:
        out += ["## Ablations (dev)", "", "| run | stance macro-F1 | sentiment macro-F1 |", "|---|---|---|"]
        for name, m in metrics["ablations"].items():
            out.append(f"| {name} | {_fmt(m.get('stance'))} | {_fmt(m.get('sentiment'))} |")
        out.append("")
    out += [
        "## Limits",
        "",
        "Sentence-level labels by the stancekit annotation guideline (docs/ANNOTATION.md). Training text is mostly "
        "official statements (Kremlin, White House, UN speeches) plus news sentences; expect lower scores on news "
        "from other outlets and countries than on the in-domain test split.",
        "",
    ]
    return "\n".join(out)


def add_to_card(artifact_dir: str | Path, key: str, value: Any) -> None:
    """Store `value` under `key` in the artifact's metrics.json, re-render its card, re-checksum."""
    import json

    from stancekit.model.artifact import CARD, METRICS, read_manifest, write_manifest

    artifact_dir = Path(artifact_dir)
    manifest = read_manifest(artifact_dir)
    metrics = json.loads((artifact_dir / METRICS).read_text())
    metrics[key] = value
    (artifact_dir / METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    (artifact_dir / CARD).write_text(render_card(manifest, metrics))
    write_manifest(artifact_dir, manifest)
