"""Human-readable renderings of profiles: terminal summary, the `profile` command's files and report.md."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from stancekit.errors import DataError
from stancekit.serve.schemas import ArticleProfile


def profile_summary(profile: ArticleProfile) -> str:
    """A few lines: sentences, label shares per head, lean with interval, top evidence, speakers."""
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


def article_files(paths: list[Path]) -> list[Path]:
    """The .txt files named, or found directly inside the directories named, in order."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(p.glob("*.txt"))
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"{p}: no such file or directory")
    if not files:
        raise DataError(f"no .txt articles found in {', '.join(map(str, paths))}")
    return files


def profiles_markdown(rows: list[tuple[str, ArticleProfile]], artifact: str) -> str:
    """report.md: one table row per article, then each article's evidence and speakers."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"# stancekit profiles\n\nArtifact `{artifact}`, {len(rows)} article(s), {when}.\n"]
    heads = list(rows[0][1].heads) if rows else []
    head = "| article | sentences | dropped | lean [95% CI] | " + " | ".join(
        f"{h}: " + " / ".join(rows[0][1].heads[h].labels) for h in heads) + " |"
    out += [head, "|---" * (4 + len(heads)) + "|"]
    for name, p in rows:
        lean = "–" if p.lean is None else (
            f"{p.lean.score:+.2f} [{p.lean.ci_low:+.2f}, {p.lean.ci_high:+.2f}]" if p.lean.ci_low is not None
            else f"{p.lean.score:+.2f}")
        shares = [" / ".join(f"{s.share:.0%}" for s in p.heads[h].labels.values()) for h in heads]
        out.append(f"| {name} | {p.n_sentences} | {p.n_dropped} | {lean} | " + " | ".join(shares) + " |")
    out.append("")
    for name, p in rows:
        out.append(f"## {name}\n")
        for label, items in p.evidence.items():
            for e in items:
                out.append(f"- **{label}** ({e.probability:.2f}): {e.text}")
        if p.speakers:
            out.append("\nSpeakers: " + "; ".join(
                f"{s.speaker} ({s.n_sentences} sentences" + (f", lean {s.lean:+.2f})" if s.lean is not None else ")")
                for s in p.speakers))
        out.append("")
    if rows and rows[0][1].lean:
        lean = rows[0][1].lean
        out.append(f"Lean: {lean.definition}; {lean.negative_label} −1 … {lean.positive_label} +1.\n")
    return "\n".join(out)


def profile_articles(
    paths: list[Path], service: Any, out_dir: Path, html: bool = True, include_sentences: bool = True
) -> list[tuple[Path, ArticleProfile]]:
    """Profile article files: <name>.profile.json (and <name>.html) per article, plus report.md."""
    from stancekit.serve.explain import read_article, render_explain_html

    files = article_files(paths)
    texts = [read_article(f) for f in files]
    profiles = service.profile_many(texts, [f.stem for f in files], include_sentences=include_sentences or html)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = service.predictor.manifest.name
    for f, text, prof in zip(files, texts, profiles):
        if html:
            (out_dir / f"{f.stem}.html").write_text(render_explain_html(text, prof, name, f.stem), encoding="utf-8")
        if not include_sentences:
            prof = prof.model_copy(update={"sentences": None, "dropped": None})
        (out_dir / f"{f.stem}.profile.json").write_text(prof.model_dump_json(indent=2) + "\n")
    (out_dir / "report.md").write_text(profiles_markdown([(f.stem, p) for f, p in zip(files, profiles)], name))
    return list(zip(files, profiles))
