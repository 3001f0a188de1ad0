"""Sentence predictions -> article stance profile (counts, shares, lean with interval, evidence, speakers)."""

from __future__ import annotations

from typing import Any

import numpy as np

from stancekit.serve.schemas import (
    ArticleProfile,
    Evidence,
    HeadPrediction,
    HeadSummary,
    LabelSummary,
    Lean,
    SentencePrediction,
    SpeakerLean,
)
from stancekit.serve.sentences import Sentence


def _decisions(probs: dict[str, np.ndarray], thresholds: dict[str, float | None]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per head: (top label index, uncertain flag) for every sentence, as arrays."""
    out = {}
    for h, p in probs.items():
        top = p.argmax(1)
        threshold = thresholds.get(h)
        conf = p[np.arange(len(p)), top]
        out[h] = (top, conf.astype(np.float64) < threshold if threshold is not None else np.zeros(len(p), dtype=bool))
    return out


def head_predictions(
    probs: dict[str, np.ndarray], heads: dict[str, list[str]], thresholds: dict[str, float | None]
) -> list[dict[str, HeadPrediction]]:
    """Per-row HeadPrediction for every head (uncertain when below the head's abstain threshold)."""
    n = len(next(iter(probs.values()))) if probs else 0
    rows: list[dict[str, HeadPrediction]] = [{} for _ in range(n)]
    for h, (top, uncertain) in _decisions(probs, thresholds).items():
        p, labels = probs[h], heads[h]
        for i in range(n):
            rows[i][h] = HeadPrediction(
                label=labels[top[i]],
                confidence=float(p[i, top[i]]),
                uncertain=bool(uncertain[i]),
                probabilities={lab: float(p[i, j]) for j, lab in enumerate(labels)},
            )
    return rows


def lean_scores(probs: np.ndarray, labels: list[str], positive: str, negative: str) -> np.ndarray:
    """Per-sentence lean: P(positive) - P(negative), in [-1, 1]."""
    return probs[:, labels.index(positive)] - probs[:, labels.index(negative)]


def bootstrap_interval(values: np.ndarray, samples: int, seed: int) -> tuple[float | None, float | None]:
    """95% percentile interval of the mean, resampling sentences with replacement (seeded)."""
    if samples <= 0 or len(values) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(samples, len(values)))].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _summaries(decisions, probs: dict[str, np.ndarray], heads: dict[str, list[str]]):
    out = {}
    for h, labels in heads.items():
        top, uncertain = decisions[h]
        n = len(top)
        counts = np.bincount(top[~uncertain], minlength=len(labels))
        out[h] = HeadSummary(
            labels={
                lab: LabelSummary(
                    count=int(counts[j]),
                    share=int(counts[j]) / n if n else 0.0,
                    mean_probability=float(probs[h][:, j].mean()) if n else 0.0,
                )
                for j, lab in enumerate(labels)
            },
            n_uncertain=int(uncertain.sum()),
        )
    return out


def _evidence(sentences: list[Sentence], p: np.ndarray, labels: list[str], skip: set[str], k: int):
    out: dict[str, list[Evidence]] = {}
    top = p.argmax(1)
    for j, lab in enumerate(labels):
        if lab in skip:
            continue
        idx = [i for i in np.argsort(-p[:, j], kind="stable") if top[i] == j][:k]
        out[lab] = [
            Evidence(
                sentence_index=int(i), text=sentences[i].text, probability=float(p[i, j]),
                start=sentences[i].start, end=sentences[i].end,
            )
            for i in idx
        ]
    return out


def _speakers(speakers: list[str | None], decision, labels: list[str] | None, lean_values) -> list[SpeakerLean]:
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(speakers):
        if s:
            groups.setdefault(s, []).append(i)
    out = []
    for name, idx in groups.items():
        counts: dict[str, int] = {}
        if decision is not None:
            top, uncertain = decision
            for i in idx:
                lab = "uncertain" if uncertain[i] else labels[top[i]]
                counts[lab] = counts.get(lab, 0) + 1
        lean = float(np.mean(lean_values[idx])) if lean_values is not None else None
        out.append(SpeakerLean(speaker=name, n_sentences=len(idx), lean=lean, counts=counts))
    return sorted(out, key=lambda s: (-s.n_sentences, s.speaker))


def build_profile(
    sentences: list[Sentence],
    probs: dict[str, np.ndarray],
    heads: dict[str, list[str]],
    thresholds: dict[str, float | None],
    settings: dict[str, Any],
    speakers: list[str | None] | None = None,
    n_dropped: int = 0,
    dropped: list[str] | None = None,
    article_id: str | None = None,
    include_sentences: bool = False,
) -> ArticleProfile:
    """Aggregate calibrated sentence probabilities into an ArticleProfile (deterministic)."""
    decisions = _decisions(probs, thresholds)
    speakers = speakers or [None] * len(sentences)
    lean_head = settings.get("lean_head")
    lean, lean_values, evidence, cross = None, None, {}, None
    if lean_head in heads:
        pos, neg = settings["lean_positive"], settings["lean_negative"]
        lean_values = lean_scores(probs[lean_head], heads[lean_head], pos, neg)
        if len(sentences):
            low, high = bootstrap_interval(lean_values, settings.get("bootstrap_samples", 1000), settings.get("seed", 0))
            lean = Lean(
                score=float(lean_values.mean()), ci_low=low, ci_high=high, positive_label=pos, negative_label=neg
            )
        neutral = set(heads[lean_head]) - {pos, neg}
        evidence = _evidence(sentences, probs[lean_head], heads[lean_head], neutral, settings.get("evidence_per_label", 3))
        others = [h for h in heads if h != lean_head]
        if others:
            other = others[0]
            cross = {a: {b: 0 for b in heads[other]} for a in heads[lean_head]}
            for a, b in zip(decisions[lean_head][0], decisions[other][0]):
                cross[heads[lean_head][a]][heads[other][b]] += 1
    return ArticleProfile(
        article_id=article_id,
        n_sentences=len(sentences),
        n_dropped=n_dropped,
        heads=_summaries(decisions, probs, heads),
        lean=lean,
        evidence=evidence,
        cross_table=cross,
        speakers=_speakers(
            speakers, decisions.get(lean_head) if lean_head in heads else None, heads.get(lean_head), lean_values
        ),
        sentences=[
            SentencePrediction(text=s.text, heads=p, start=s.start, end=s.end, speaker=sp)
            for s, p, sp in zip(sentences, head_predictions(probs, heads, thresholds), speakers)
        ]
        if include_sentences
        else None,
        dropped=dropped if include_sentences else None,
    )
