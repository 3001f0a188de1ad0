"""Profile arithmetic, evidence, speakers, bootstrap determinism."""

from __future__ import annotations

import numpy as np
import pytest

from stancekit.serve.profile import bootstrap_interval, build_profile
from stancekit.serve.sentences import Sentence

HEADS = {"stance": ["pro_us_alignment", "pro_russia_engagement", "neutral"], "sentiment": ["negative", "neutral", "positive"]}
SETTINGS = {"lean_head": "stance", "lean_positive": "pro_us_alignment", "lean_negative": "pro_russia_engagement",
            "evidence_per_label": 2, "bootstrap_samples": 500, "seed": 0}


def _sentences(n):
    out, pos = [], 0
    for i in range(n):
        text = f"Sentence number {i}."
        out.append(Sentence(text, pos, pos + len(text)))
        pos += len(text) + 1
    return out


def _probs():
    stance = np.array([[0.8, 0.1, 0.1], [0.1, 0.7, 0.2], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1]])
    sentiment = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.1, 0.8, 0.1], [0.5, 0.3, 0.2]])
    return {"stance": stance, "sentiment": sentiment}


def test_profile_counts_shares_and_mean_probabilities():
    p = build_profile(_sentences(4), _probs(), HEADS, {}, SETTINGS)
    stance = p.heads["stance"].labels
    assert (stance["pro_us_alignment"].count, stance["pro_russia_engagement"].count, stance["neutral"].count) == (2, 1, 1)
    assert stance["pro_us_alignment"].share == pytest.approx(0.5)
    assert stance["neutral"].mean_probability == pytest.approx((0.1 + 0.2 + 0.6 + 0.1) / 4)
    assert sum(s.share for s in stance.values()) == pytest.approx(1.0)


def test_profile_lean_is_mean_of_us_minus_russia_probability():
    p = build_profile(_sentences(4), _probs(), HEADS, {}, SETTINGS)
    expected = np.mean([0.8 - 0.1, 0.1 - 0.7, 0.2 - 0.2, 0.6 - 0.3])
    assert p.lean.score == pytest.approx(expected)
    assert p.lean.ci_low <= p.lean.score <= p.lean.ci_high
    assert -1 <= p.lean.ci_low and p.lean.ci_high <= 1


def test_profile_evidence_sorted_by_probability_with_offsets():
    sents = _sentences(4)
    p = build_profile(sents, _probs(), HEADS, {}, SETTINGS)
    us = p.evidence["pro_us_alignment"]
    assert [e.sentence_index for e in us] == [0, 3]
    assert us[0].probability == pytest.approx(0.8)
    assert (us[1].start, us[1].end) == (sents[3].start, sents[3].end)
    assert "neutral" not in p.evidence


def test_profile_cross_table_counts_stance_by_sentiment():
    p = build_profile(_sentences(4), _probs(), HEADS, {}, SETTINGS)
    assert p.cross_table["pro_us_alignment"]["negative"] == 2
    assert p.cross_table["pro_russia_engagement"]["positive"] == 1
    assert sum(sum(r.values()) for r in p.cross_table.values()) == 4


def test_profile_abstention_counts_uncertain_apart():
    p = build_profile(_sentences(4), _probs(), HEADS, {"stance": 0.65}, SETTINGS)
    stance = p.heads["stance"]
    assert stance.n_uncertain == 2  # 0.6 and 0.6 are below 0.65
    assert sum(s.count for s in stance.labels.values()) == 2


def test_profile_empty_article_has_no_lean():
    empty = {h: np.zeros((0, 3)) for h in HEADS}
    p = build_profile([], empty, HEADS, {}, SETTINGS, n_dropped=3)
    assert p.n_sentences == 0 and p.n_dropped == 3 and p.lean is None


def test_profile_speakers_grouped_with_lean():
    speakers = ["Goto", None, "Goto", "Toner"]
    p = build_profile(_sentences(4), _probs(), HEADS, {}, SETTINGS, speakers=speakers)
    goto = next(s for s in p.speakers if s.speaker == "Goto")
    assert goto.n_sentences == 2
    assert goto.lean == pytest.approx(np.mean([0.7, 0.0]))
    assert goto.counts == {"pro_us_alignment": 1, "neutral": 1}


def test_bootstrap_interval_is_deterministic_for_a_seed(global_random_seed):
    values = np.random.default_rng(global_random_seed).uniform(-1, 1, 50)
    assert bootstrap_interval(values, 300, seed=7) == bootstrap_interval(values, 300, seed=7)
    assert bootstrap_interval(values, 300, seed=7) != bootstrap_interval(values, 300, seed=8)


def test_service_profile_is_deterministic(tiny_artifact, sample_article):
    from stancekit.serve.service import StanceService

    svc = StanceService.from_artifact(tiny_artifact)
    a = svc.profile(sample_article, include_sentences=True)
    b = StanceService.from_artifact(tiny_artifact).profile(sample_article, include_sentences=True)
    assert a.model_dump_json() == b.model_dump_json()
    assert a.lean.ci_low is not None
