"""Render evaluation metrics as report.html (one self-contained file) and report.md, plus a terminal table.

Three layers, each usable alone: `plot_*` turn numbers into PNG bytes
(matplotlib, Agg, no pyplot state), `render_*` fill the Jinja2 templates in
serve/templates/, and `write_report` writes both files. Images and CSS are
inlined, so the HTML opens offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).parent / "templates"

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442"]
NEUTRAL_GREY = "#9A9A9A"
SENTIMENT_COLORS = {"negative": "#CC79A7", "neutral": NEUTRAL_GREY, "positive": "#009E73"}


def label_colors(labels: list[str], positive: str | None = None, negative: str | None = None) -> dict[str, str]:
    """One colour per label: lean-positive blue, lean-negative vermillion, 'neutral' grey, others Okabe-Ito."""
    if set(labels) <= set(SENTIMENT_COLORS) and positive is None:
        return {lab: SENTIMENT_COLORS[lab] for lab in labels}
    fixed = {positive: OKABE_ITO[0], negative: OKABE_ITO[1], "neutral": NEUTRAL_GREY}
    spare = iter(c for c in OKABE_ITO[2:] if c not in fixed.values())
    return {lab: fixed.get(lab) or next(spare, NEUTRAL_GREY) for lab in labels}


# --- formatting filters (shared by HTML and Markdown) ------------------------------------------


def fmt_num(x: float | None, digits: int = 3) -> str:
    """A number with fixed decimals, or an en dash for a missing value."""
    return "–" if x is None else f"{x:.{digits}f}"


def fmt_ci(v: dict[str, float | None] | None) -> str:
    """'0.812 [0.770, 0.851]' from a {value, ci_low, ci_high} dict."""
    if not v or v.get("value") is None:
        return "–"
    if v.get("ci_low") is None:
        return fmt_num(v["value"])
    return f"{v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"


def fmt_signed(x: float | None) -> str:
    """'+0.12' / '−0.40' for lean scores."""
    if x is None:
        return "–"
    return "0.00" if round(x, 2) == 0 else f"{x:+.2f}".replace("-", "−")


def md_cell(text: Any) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, one line)."""
    return " ".join(str("" if text is None else text).split()).replace("|", "\\|")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Jinja2 environment over serve/templates: HTML templates autoescaped, Markdown not."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(num=fmt_num, ci=fmt_ci, signed=fmt_signed, mdcell=md_cell)
    return env


def render(template: str, **context: Any) -> str:
    """Render one template of serve/templates."""
    return environment().get_template(template).render(**context)


# --- plots -------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=144, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> Any:
    # A bare Figure renders with Agg and leaves pyplot state alone.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    fig.set_layout_engine("constrained")
    return fig


def plot_confusion(head: dict[str, Any], name: str) -> str:
    """Base64 PNG: confusion matrix as counts and row-normalised, side by side."""
    labels = head["labels"]
    short = [lab.replace("_", " ") for lab in labels]
    fig = _figure(8.4, 3.5)
    for ax, key, title in zip(fig.subplots(1, 2), ("counts", "normalized"), ("counts", "row-normalised (recall)")):
        m = head["confusion"][key]
        vmax = max(max(row) for row in m) or 1
        ax.imshow(m, cmap="cividis", vmin=0, vmax=vmax)
        for i, row in enumerate(m):
            for j, v in enumerate(row):
                text = f"{v:d}" if key == "counts" else f"{v:.2f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=10, color="white" if v < vmax * 0.55 else "black")
        ax.set_xticks(range(len(labels)), short, rotation=20, ha="right", fontsize=9)
        ax.set_yticks(range(len(labels)), short, fontsize=9)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(f"{name}: {title}", fontsize=10)
    return _png(fig)


def plot_reliability(head: dict[str, Any], name: str) -> str:
    """Base64 PNG: accuracy against confidence per bin, with the diagonal and the bin counts below."""
    bins = [b for b in head["reliability"] if b["n"]]
    fig = _figure(4.6, 4.2)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot([0, 1], [0, 1], ls="--", color=NEUTRAL_GREY, lw=1, label="perfect calibration")
    width = head["reliability"][0]["high"] - head["reliability"][0]["low"] if head["reliability"] else 0.1
    top.bar([b["low"] for b in bins], [b["accuracy"] for b in bins], width=width, align="edge",
            color=OKABE_ITO[0], alpha=0.75, edgecolor="white", label="accuracy in bin")
    top.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color=OKABE_ITO[1], ms=4,
             label="mean confidence")
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(f"{name}: reliability (ECE {fmt_num(head['ece'])})", fontsize=10)
    top.legend(fontsize=8, loc="upper left", frameon=False)
    bottom.bar([b["low"] for b in bins], [b["n"] for b in bins], width=width, align="edge", color=NEUTRAL_GREY)
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("confidence (top calibrated probability)")
    bottom.set_ylabel("rows")
    return _png(fig)


def plot_baselines(baselines: dict[str, Any], heads: list[str]) -> str:
    """Base64 PNG: macro-F1 per system and head as grouped horizontal bars."""
    systems = list(baselines["systems"])
    fig = _figure(7.5, 0.45 * len(systems) * len(heads) + 1.2)
    ax = fig.subplots()
    height = 0.8 / max(len(heads), 1)
    for k, h in enumerate(heads):
        vals = [baselines["systems"][s][h]["macro_f1"] for s in systems]
        ys = [i + k * height for i in range(len(systems))]
        ax.barh(ys, [v or 0.0 for v in vals], height=height, color=OKABE_ITO[k % len(OKABE_ITO)], label=h)
        for y, v in zip(ys, vals):
            ax.text((v or 0.0) + 0.01, y, "n/a" if v is None else f"{v:.3f}", va="center", fontsize=8)
    ax.set_yticks([i + height * (len(heads) - 1) / 2 for i in range(len(systems))], systems, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("macro-F1")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return _png(fig)


def plot_articles(articles: dict[str, Any]) -> str:
    """Base64 PNG: per-article gold lean against predicted lean, marker area by sentence count."""
    used = [a for a in articles["articles"] if a["n"] >= articles["min_sentences"]]
    rest = [a for a in articles["articles"] if a["n"] < articles["min_sentences"]]
    fig = _figure(5.2, 4.8)
    ax = fig.subplots()
    ax.plot([-1, 1], [-1, 1], ls="--", color=NEUTRAL_GREY, lw=1)
    if rest:
        ax.scatter([a["gold_lean"] for a in rest], [a["predicted_lean"] for a in rest], s=10, color=NEUTRAL_GREY,
                   alpha=0.5, label=f"< {articles['min_sentences']} sentences (not in ρ)")
    ax.scatter([a["gold_lean"] for a in used], [a["predicted_lean"] for a in used],
               s=[12 + 6 * a["n"] for a in used], color=OKABE_ITO[0], alpha=0.6, edgecolor="white", label="articles")
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel(f"gold lean ({articles['negative_label']} −1 … {articles['positive_label']} +1)", fontsize=9)
    ax.set_ylabel("predicted lean", fontsize=9)
    ax.set_title(f"Article lean: Spearman ρ = {fmt_num(articles['spearman_lean'], 2)} (n = {articles['n_used']})",
                 fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return _png(fig)


def report_images(metrics: dict[str, Any]) -> dict[str, str]:
    """All report images as base64 PNG, keyed '<head>/confusion', '<head>/reliability', 'baselines', 'articles'."""
    images = {}
    for h, m in metrics["heads"].items():
        if m["n"]:
            images[f"{h}/confusion"] = plot_confusion(m, h)
            images[f"{h}/reliability"] = plot_reliability(m, h)
    if len(metrics["baselines"]["systems"]) > 1:
        images["baselines"] = plot_baselines(metrics["baselines"], list(metrics["heads"]))
    arts = metrics.get("articles")
    if arts and arts["n_articles"]:
        images["articles"] = plot_articles(arts)
    return images


# --- documents ---------------------------------------------------------------------------------


def _context(metrics: dict[str, Any]) -> dict[str, Any]:
    arts = metrics.get("articles")
    disagreements = []
    if arts:
        used = [a for a in arts["articles"] if a["n"] >= arts["min_sentences"]]
        disagreements = sorted(used, key=lambda a: -abs(a["gold_lean"] - a["predicted_lean"]))[:10]
    return {"m": metrics, "disagreements": disagreements}


def render_report_html(metrics: dict[str, Any], images: dict[str, str] | None = None) -> str:
    """report.html: one file with inline CSS and base64 PNG images."""
    images = report_images(metrics) if images is None else images
    return render("report.html.j2", images=images, **_context(metrics))


def render_report_md(metrics: dict[str, Any]) -> str:
    """report.md: the same numbers as report.html, without images."""
    return render("report.md.j2", **_context(metrics))


def write_report(metrics: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write report.html and report.md into `out_dir`; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"html": out / "report.html", "md": out / "report.md"}
    paths["html"].write_text(render_report_html(metrics), encoding="utf-8")
    paths["md"].write_text(render_report_md(metrics), encoding="utf-8")
    return paths


def summary_table(metrics: dict[str, Any]) -> str:
    """Plain-text table for the terminal: per head n, macro-F1 with interval, accuracy, ECE."""
    rows = [("head", "n", "macro-F1 [95% CI]", "accuracy [95% CI]", "ECE")]
    for h, m in metrics["heads"].items():
        rows.append((h, str(m["n"]), fmt_ci(m["macro_f1"]), fmt_ci(m["accuracy"]), fmt_num(m["ece"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    arts = metrics.get("articles")
    if arts and arts["n_used"]:
        lines.append(
            f"\narticles: {arts['n_used']} with ≥{arts['min_sentences']} labelled sentences, "
            f"lean Spearman ρ {fmt_num(arts['spearman_lean'], 2)}, mean |gold − predicted| {fmt_num(arts['lean_mean_abs_error'], 2)}"
        )
    return "\n".join(lines)
