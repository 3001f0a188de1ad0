"""Public result types (pydantic): sentence predictions and the article stance profile."""

from __future__ import annotations

from pydantic import BaseModel, Field

PROFILE_SCHEMA_VERSION = "1.1"


class HeadPrediction(BaseModel):
    """One head's decision for one sentence."""

    label: str = Field(description="Most probable label.")
    confidence: float = Field(description="Calibrated probability of `label`.")
    uncertain: bool = Field(False, description="True when confidence is below the head's abstain threshold.")
    probabilities: dict[str, float] = Field(description="Calibrated probability per label.")


class SentencePrediction(BaseModel):
    """A sentence with its per-head predictions and, inside an article, its character offsets."""

    text: str
    heads: dict[str, HeadPrediction]
    start: int | None = Field(None, description="Offset of the first character in the article.")
    end: int | None = Field(None, description="Offset after the last character in the article.")
    speaker: str | None = Field(None, description="Attributed speaker (quotes, reporting verbs), if any.")

    def label(self, head: str) -> str:
        """Predicted label of `head`."""
        return self.heads[head].label


class LabelSummary(BaseModel):
    """Count, share and mean probability of one label over an article's content sentences."""

    count: int
    share: float
    mean_probability: float


class HeadSummary(BaseModel):
    """Per-label summary for one head; uncertain sentences are counted apart, not in a label."""

    labels: dict[str, LabelSummary]
    n_uncertain: int = 0


class Evidence(BaseModel):
    """A sentence supporting a stance label, with its probability and offsets."""

    sentence_index: int
    text: str
    probability: float
    start: int
    end: int


class Lean(BaseModel):
    """Article lean in [-1, 1]: mean over content sentences of P(positive label) - P(negative label)."""

    score: float
    ci_low: float | None = Field(None, description="2.5th percentile of the sentence bootstrap.")
    ci_high: float | None = Field(None, description="97.5th percentile of the sentence bootstrap.")
    positive_label: str
    negative_label: str
    definition: str = "mean over content sentences of P(positive_label) - P(negative_label); -1 … +1"


class SpeakerLean(BaseModel):
    """Sentences attributed to one speaker and their lean."""

    speaker: str
    n_sentences: int
    lean: float | None
    counts: dict[str, int]


class ArticleProfile(BaseModel):
    """Article-level stance profile aggregated from sentence predictions."""

    schema_version: str = PROFILE_SCHEMA_VERSION
    article_id: str | None = None
    n_sentences: int = Field(description="Content sentences scored.")
    n_dropped: int = Field(description="Non-content lines dropped (newsletter prompts, copyright, ...).")
    heads: dict[str, HeadSummary]
    lean: Lean | None
    evidence: dict[str, list[Evidence]] = Field(default_factory=dict)
    cross_table: dict[str, dict[str, int]] | None = Field(
        None, description="Counts of lean-head label x other-head label (e.g. stance x sentiment)."
    )
    speakers: list[SpeakerLean] = Field(default_factory=list)
    sentences: list[SentencePrediction] | None = None
    dropped: list[str] | None = Field(None, description="Text of the dropped non-content lines.")
