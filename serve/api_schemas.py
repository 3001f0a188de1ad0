"""Versioned HTTP request/response models (API v1); limits live on the fields so OpenAPI shows them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from stancekit.serve.schemas import ArticleProfile, SentencePrediction

API_VERSION = "v1"
MAX_SENTENCES = 256
MAX_SENTENCE_CHARS = 2_000
MAX_ARTICLES = 16
MAX_ARTICLE_CHARS = 20_000
MAX_ID_CHARS = 200


def _encodable(text: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); the tokenizer cannot, so refuse them here.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"contains an unpaired surrogate at character {err.start}; send valid Unicode") from None
    return text


SentenceText = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_SENTENCE_CHARS), AfterValidator(_encodable)
]
ArticleText = Annotated[str, StringConstraints(max_length=MAX_ARTICLE_CHARS), AfterValidator(_encodable)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassifyRequest(_Request):
    """Sentences to classify with every head."""

    sentences: list[SentenceText] = Field(
        min_length=1, max_length=MAX_SENTENCES,
        description=f"1 to {MAX_SENTENCES} sentences of 1 to {MAX_SENTENCE_CHARS} characters each.",
        examples=[["Tokyo welcomed the new gas deal with Russia."]],
    )


class ArticleIn(_Request):
    """One article: its text and an optional id echoed in the profile."""

    id: Annotated[str, StringConstraints(max_length=MAX_ID_CHARS), AfterValidator(_encodable)] | None = Field(
        None, description="Caller's id for the article, returned as `article_id`."
    )
    text: ArticleText = Field(
        description=f"Article text, at most {MAX_ARTICLE_CHARS} characters; split into sentences by the service."
    )


class ProfileRequest(_Request):
    """Articles to profile."""

    articles: list[ArticleIn] = Field(min_length=1, max_length=MAX_ARTICLES, description=f"1 to {MAX_ARTICLES} articles.")
    include_sentences: bool = Field(False, strict=True, description="Include per-sentence predictions and dropped lines.")


class ModelInfo(BaseModel):
    """Which model answered."""

    name: str
    backend: str


class ClassifyResponse(BaseModel):
    """Per-sentence predictions, in request order."""

    api_version: Literal["v1"] = API_VERSION
    model: ModelInfo
    predictions: list[SentencePrediction]


class ProfileResponse(BaseModel):
    """One profile per article, in request order (same schema as `StanceService.profile`)."""

    api_version: Literal["v1"] = API_VERSION
    model: ModelInfo
    profiles: list[ArticleProfile]


class ErrorDetail(BaseModel):
    """What went wrong, where, and the rule that was broken."""

    type: str = Field(description="Error class, e.g. RequestError, QueueFullError, validation_error.")
    message: str
    fields: list[str] = Field(default_factory=list, description="Dotted paths of the offending request fields.")


class ErrorResponse(BaseModel):
    """Body of every 4xx/5xx answer."""

    error: ErrorDetail


class HealthResponse(BaseModel):
    """Liveness (/healthz) or readiness (/readyz)."""

    status: Literal["ok", "ready", "starting", "draining"]
    model: ModelInfo | None = None
