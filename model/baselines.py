"""Simple baselines with the scikit-learn interface: fit / predict / predict_proba, learned state in `*_`."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils.validation import check_is_fitted

SENTIMENT_LABELS = ("negative", "neutral", "positive")


def tfidf_logreg(seed: int = 0, C: float = 4.0) -> Pipeline:
    """TF-IDF word 1-2 grams + class-balanced logistic regression.

    >>> clf = tfidf_logreg().fit(["good deal", "bad war", "good talks", "bad sanctions"], [1, 0, 1, 0])
    >>> clf.predict(["good"]).tolist()
    [1]
    """
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, lowercase=True),
        LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed),
    )


class VaderSentiment(ClassifierMixin, BaseEstimator):
    """VADER lexicon sentiment: compound >= threshold positive, <= -threshold negative, else neutral.

    `labels` is the head's label list; predictions are indices into it.
    """

    def __init__(self, labels: tuple[str, ...] = SENTIMENT_LABELS, threshold: float = 0.05):
        self.labels = labels
        self.threshold = threshold

    def fit(self, X: list[str], y: np.ndarray | None = None) -> VaderSentiment:
        """Nothing to learn; builds the analyzer."""
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer_ = SentimentIntensityAnalyzer()
        self.classes_ = np.arange(len(self.labels))
        return self

    def _compound(self, X: list[str]) -> np.ndarray:
        check_is_fitted(self, "analyzer_")
        return np.array([self.analyzer_.polarity_scores(x)["compound"] for x in X])

    def predict(self, X: list[str]) -> np.ndarray:
        """Label index per text."""
        c = self._compound(X)
        names = np.where(c >= self.threshold, "positive", np.where(c <= -self.threshold, "negative", "neutral"))
        index = {lab: i for i, lab in enumerate(self.labels)}
        return np.array([index[n] for n in names])

    def predict_proba(self, X: list[str]) -> np.ndarray:
        """One-hot probabilities of the predicted label (VADER gives no calibrated probabilities)."""
        pred = self.predict(X)
        out = np.zeros((len(pred), len(self.labels)))
        out[np.arange(len(pred)), pred] = 1.0
        return out


def frozen_embedding_logreg(seed: int = 0, C: float = 1.0) -> LogisticRegression:
    """Logistic regression on frozen, mean-pooled encoder embeddings."""
    return LogisticRegression(C=C, class_weight="balanced", max_iter=3000, random_state=seed)
