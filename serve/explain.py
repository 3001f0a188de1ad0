"""One article as a self-contained HTML page: sentences shaded by stance, marked by sentiment, summary on top.

`explain_article` profiles the text with StanceService (sentences with offsets
and the dropped boilerplate lines), `article_segments` lays the profile back onto
the original text, and `render_explain_html` fills templates/explain.html.j2.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from stancekit.errors import DataError
from stancekit.serve.report_html import label_colors, render
from stancekit.serve.schemas import ArticleProfile, SentencePrediction


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, {alpha:.2f})"


def display_heads(profile: ArticleProfile) -> tuple[str, str | None]:
    """(head that shades sentences, head that marks them): the lean head first, then the next head if any."""
    heads = list(profile.heads)
    shade = _lean_head(profile) or heads[0]
    mark = next((h for h in heads if h != shade), None)
    return shade, mark


def _lean_head(profile: ArticleProfile) -> str | None:
    # The lean's labels identify its head: the one head holding both of them.
    for h, summary in profile.heads.items():
        if profile.lean and {profile.lean.positive_label, profile.lean.negative_label} <= set(summary.labels):
            return h
    return None


def locate_dropped(text: str, dropped: list[str], sentences: list[SentencePrediction]) -> list[tuple[int, int]]:
    """Offsets of each dropped line in `text`, in order, never inside a content sentence."""
    spans = [(s.start or 0, s.end or 0) for s in sentences]
    out, cursor = [], 0
    for line in dropped:
        pos = text.find(line, cursor)
        while pos >= 0 and any(a < pos + len(line) and pos < b for a, b in spans):
            pos = text.find(line, pos + 1)
        if pos < 0:  # not findable (should not happen): keep it out of the text rather than misplace it
            continue
        out.append((pos, pos + len(line)))
        cursor = pos + len(line)
    return out


def _tooltip(s: SentencePrediction) -> str:
    lines = []
    for h, hp in s.heads.items():
        flag = ", uncertain" if hp.uncertain else ""
        lines.append(f"{h}: {hp.label} ({hp.confidence:.2f}{flag})")
        lines.append("   " + " · ".join(f"{lab} {p:.2f}" for lab, p in hp.probabilities.items()))
    if s.speaker:
        lines.append(f"speaker: {s.speaker}")
    return "\n".join(lines)


def article_segments(text: str, profile: ArticleProfile, colors: dict[str, str]) -> list[dict[str, Any]]:
    """The whole text as ordered pieces: 'sentence' (with shading and tooltip), 'dropped', or plain 'gap'."""
    sentences = profile.sentences or []
    shade, mark = display_heads(profile)
    pieces: list[tuple[int, int, str, int]] = [(s.start or 0, s.end or 0, "sentence", i) for i, s in enumerate(sentences)]
    pieces += [(a, b, "dropped", j) for j, (a, b) in enumerate(locate_dropped(text, profile.dropped or [], sentences))]
    out, pos = [], 0
    for start, end, kind, i in sorted(pieces):
        if start > pos:
            out.append({"kind": "gap", "text": text[pos:start]})
        if kind == "dropped":
            out.append({"kind": "dropped", "text": text[start:end]})
        else:
            s = sentences[i]
            hp = s.heads[shade]
            k = len(hp.probabilities)
            strength = (hp.confidence - 1 / k) / (1 - 1 / k) if k > 1 else 1.0
            neutral = hp.label == "neutral" or profile.lean is None or hp.label not in (
                profile.lean.positive_label, profile.lean.negative_label
            )
            alpha = 0.14 if neutral else 0.16 + 0.44 * max(0.0, min(1.0, strength))
            out.append({
                "kind": "sentence", "index": i, "text": text[start:end], "title": _tooltip(s),
                "label": hp.label, "uncertain": hp.uncertain, "mark": s.heads[mark].label if mark else None,
                "style": f"background-color: {_rgba(colors[hp.label], alpha)}",
            })
        pos = max(pos, end)
    if pos < len(text):
        out.append({"kind": "gap", "text": text[pos:]})
    return out


def _bars(profile: ArticleProfile, head: str, colors: dict[str, str]) -> dict[str, Any]:
    summary = profile.heads[head]
    n = profile.n_sentences
    parts = [
        {"label": lab, "count": s.count, "share": s.share, "color": colors[lab], "width": 100 * s.share}
        for lab, s in summary.labels.items()
    ]
    if summary.n_uncertain:
        parts.append({"label": "uncertain", "count": summary.n_uncertain, "share": summary.n_uncertain / n,
                      "color": "#dddddd", "width": 100 * summary.n_uncertain / n})
    return {"head": head, "parts": parts, "n_uncertain": summary.n_uncertain}


def _pct(x: float) -> float:
    """Position of a lean value in [-1, 1] on a 0-100 % track."""
    return 50 * (max(-1.0, min(1.0, x)) + 1)


def render_explain_html(text: str, profile: ArticleProfile, artifact_name: str, source_name: str | None = None) -> str:
    """The article page: summary (shares, lean with interval, speakers, evidence), legend, shaded text."""
    shade, mark = display_heads(profile)
    lean = profile.lean
    colors = {h: label_colors(list(s.labels), lean.positive_label if lean and h == shade else None,
                              lean.negative_label if lean and h == shade else None)
              for h, s in profile.heads.items()}
    lean_view = None
    if lean:
        lean_view = {
            "score": lean.score, "ci_low": lean.ci_low, "ci_high": lean.ci_high, "x": _pct(lean.score),
            "lo": _pct(lean.ci_low if lean.ci_low is not None else lean.score),
            "hi": _pct(lean.ci_high if lean.ci_high is not None else lean.score),
            "positive": lean.positive_label, "negative": lean.negative_label,
            "positive_color": colors[shade][lean.positive_label], "negative_color": colors[shade][lean.negative_label],
        }
    return render(
        "explain.html.j2",
        p=profile,
        title=profile.article_id or source_name or "article",
        artifact_name=artifact_name,
        source_name=source_name,
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        shade=shade,
        mark=mark,
        colors=colors,
        bars=[_bars(profile, h, colors[h]) for h in profile.heads],
        lean=lean_view,
        segments=article_segments(text, profile, colors[shade]),
    )


def explain_article(
    artifact: str | Path, text: str, out_html: str | Path, *, article_id: str | None = None,
    backend: str | None = None, service: Any = None,
) -> ArticleProfile:
    """Profile `text` with the artifact and write the highlighted article view to `out_html`; return the profile."""
    from stancekit.serve.service import StanceService

    svc = service or StanceService.from_artifact(artifact, backend=backend)
    profile = svc.profile(text, article_id=article_id, include_sentences=True)
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    html = render_explain_html(text, profile, svc.predictor.manifest.name, source_name=article_id)
    out.write_text(html, encoding="utf-8")
    return profile


def read_article(path: str | Path) -> str:
    """Text of an article file (UTF-8), with a DataError naming the file when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: article file not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start}); save the article as UTF-8") from None
