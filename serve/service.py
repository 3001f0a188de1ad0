"""StanceService: the in-process Python API (classify sentences, profile articles)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stancekit.errors import RequestError
from stancekit.serve.predictor import Predictor
from stancekit.serve.profile import build_profile, head_predictions
from stancekit.serve.schemas import ArticleProfile, SentencePrediction
from stancekit.serve.sentences import SplitResult, split_article
from stancekit.serve.speakers import attribute_speakers


class StanceService:
    """Classify sentences and profile articles with one loaded artifact.

    Examples
    --------
    >>> svc = StanceService.from_artifact("artifacts/default")            # doctest: +SKIP
    >>> svc.classify(["Tokyo welcomed the new gas deal with Russia."])[0].label("stance")  # doctest: +SKIP
    'pro_russia_engagement'
    """

    def __init__(self, predictor: Predictor):
        self.predictor = predictor
        m = predictor.manifest
        self.heads = predictor.heads
        self.thresholds = {h: spec.abstain_threshold for h, spec in m.heads.items()}
        self.settings = dict(m.profile)

    @classmethod
    def from_artifact(cls, path: str | Path, **predictor_kwargs) -> StanceService:
        """Load and verify an artifact; keyword arguments go to Predictor (backend, threads, ...)."""
        return cls(Predictor(path, **predictor_kwargs))

    def classify(self, sentences: Sequence[str], pairs: Sequence[str] | None = None) -> list[SentencePrediction]:
        """Per-sentence labels and calibrated probabilities for every head, in input order."""
        for i, s in enumerate(sentences):
            if not isinstance(s, str):
                raise RequestError(f"sentences[{i}]: expected a string, got {type(s).__name__}")
        probs = self.predictor.predict_proba(list(sentences), pairs)
        preds = head_predictions(probs, self.heads, self.thresholds)
        return [SentencePrediction(text=s, heads=p) for s, p in zip(sentences, preds)]

    def profile(self, article_text: str, article_id: str | None = None, include_sentences: bool = False) -> ArticleProfile:
        """Split the article, drop non-content lines, score the sentences, aggregate into a profile."""
        return self.profile_many([article_text], [article_id], include_sentences)[0]

    def profile_many(
        self,
        articles: Sequence[str],
        article_ids: Sequence[str | None] | None = None,
        include_sentences: bool = False,
    ) -> list[ArticleProfile]:
        """Profiles for several articles, their sentences scored together in token-budget batches."""
        ids = list(article_ids) if article_ids is not None else [None] * len(articles)
        splits = self.split(articles, ids)
        probs = self.predictor.predict_proba([s.text for sp in splits for s in sp.sentences])
        return self.profiles_from_probs(splits, ids, probs, include_sentences)

    def split(self, articles: Sequence[str], article_ids: Sequence[str | None]) -> list[SplitResult]:
        """Content sentences of each article (non-strings refused, naming the article)."""
        splits = []
        for i, text in enumerate(articles):
            if not isinstance(text, str):
                raise RequestError(f"article {article_ids[i] or i}: text must be a string, got {type(text).__name__}")
            splits.append(split_article(text))
        return splits

    def profiles_from_probs(
        self,
        splits: Sequence[SplitResult],
        article_ids: Sequence[str | None],
        probs: dict[str, np.ndarray],
        include_sentences: bool = False,
    ) -> list[ArticleProfile]:
        """One profile per article from the probabilities of all articles' sentences, concatenated in order."""
        out, pos = [], 0
        for art_id, sp in zip(article_ids, splits):
            n = len(sp.sentences)
            texts = [s.text for s in sp.sentences]
            out.append(
                build_profile(
                    sp.sentences, {h: p[pos:pos + n] for h, p in probs.items()}, self.heads, self.thresholds,
                    self.settings, speakers=attribute_speakers(texts), n_dropped=sp.n_dropped,
                    dropped=[d.text for d, _ in sp.dropped], article_id=art_id, include_sentences=include_sentences,
                )
            )
            pos += n
        return out
