"""Human-readable renderings of results (terminal summaries)."""

from __future__ import annotations

from stancekit.serve.schemas import ArticleProfile


def profile_summary(profile: ArticleProfile) -> str:
    """A few lines: sentences, label shares per head, lean with interval, top evidence."""
    lines = [f"{profile.article_id or 'article'}: {profile.n_sentences} content sentences, {profile.n_dropped} dropped lines"]
    for h, summary in profile.heads.items():
        shares = ", ".join(f"{lab} {s.count} ({s.share:.0%})" for lab, s in summary.labels.items())
        unc = f", uncertain {summary.n_uncertain}" if summary.n_uncertain else ""
        lines.append(f"  {h}: {shares}{unc}")
    if profile.lean:
        ci = (
            f" [95% CI {profile.lean.ci_low:+.2f} … {profile.lean.ci_high:+.2f}]"
            if profile.lean.ci_low is not None
            else ""
        )
        lines.append(
            f"  lean {profile.lean.score:+.2f}{ci} ({profile.lean.negative_label} -1 … {profile.lean.positive_label} +1)"
        )
    for label, items in profile.evidence.items():
        if items:
            e = items[0]
            lines.append(f"  top {label} ({e.probability:.2f}): {e.text[:110]}")
    if profile.speakers:
        lines.append("  speakers: " + "; ".join(
            f"{s.speaker} ({s.n_sentences}, lean {s.lean:+.2f})" if s.lean is not None else f"{s.speaker} ({s.n_sentences})"
            for s in profile.speakers[:5]
        ))
    return "\n".join(lines)
