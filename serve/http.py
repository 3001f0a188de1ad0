"""HTTP service: settings, FastAPI app factory, routes and error mapping.

The request path splits articles (serve.sentences), submits the sentences to the
shared Scheduler (serve.queue), and aggregates with serve.profile exactly as
StanceService.profile_many does, so /v1/profile returns the Python API's profile.
CPU work (splitting, tokenising, aggregating) runs in the thread pool and inference in
the scheduler's worker thread: the event loop only routes and waits. Prometheus metrics
and the body-size and request-metrics middlewares are serve.http_metrics.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from stancekit.errors import ConfigError, OverloadedError, RequestError, StancekitError
from stancekit.serve.api_schemas import (
    MAX_SENTENCES,
    ClassifyRequest,
    ClassifyResponse,
    ErrorDetail,
    ErrorResponse,
    HealthResponse,
    ModelInfo,
    ProfileRequest,
    ProfileResponse,
)
from stancekit.serve.engines import BACKENDS
from stancekit.serve.http_metrics import BodyLimit, Metrics, RequestMetrics
from stancekit.serve.predictor import Encoded
from stancekit.serve.profile import head_predictions
from stancekit.serve.queue import CallerGone, QueueFullError, Scheduler
from stancekit.serve.schemas import ArticleProfile, SentencePrediction
from stancekit.serve.sentences import SplitResult
from stancekit.serve.service import StanceService

logger = logging.getLogger(__name__)
T = TypeVar("T")

WARMUP_TEXTS = ["Tokyo welcomed the new gas deal with Russia.", "Officials backed new sanctions against Moscow."]


class ServeSettings(BaseModel):
    """Service settings; each maps to a `stancekit serve` flag and is documented in docs/http.md."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    artifact: Path = Field(description="Artifact directory written by `stancekit train`.")
    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 exposes the service beyond this host.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port).")
    backend: str | None = Field(
        None, description=f"Inference backend: {', '.join(BACKENDS)} (default: the artifact's serve.backend)."
    )
    threads: int | None = Field(None, ge=1, description="Inference threads (default: all cores).")
    workers: int | None = Field(
        None, ge=1, description="Batches scored at once, each on threads/workers threads (default: one "
        "single-threaded worker per thread, which keeps the cores busy while HTTP and splitting take turns on them).",
    )
    max_batch_tokens: int = Field(
        16384, ge=16, description="Tokens per scheduled batch, summed over its sentences: larger batches sort and "
        "pad better (throughput) but every request in one waits for the whole batch (latency).",
    )
    max_wait_ms: float = Field(
        5.0, ge=0, le=10_000, description="How long an idle worker waits for requests still being read or "
        "tokenized before running a partial batch: more merging under moderate load, at that much extra latency.",
    )
    max_queue: int = Field(
        4096, ge=1, description="Sentences allowed to wait; beyond it requests get 429. Larger absorbs bursts but "
        "lets queueing delay (and memory) grow; keep it below what the service scores in --timeout-s.",
    )
    timeout_s: float = Field(
        30.0, gt=0, le=3600, description="Per-request deadline (503 after it): shorter frees clients sooner under "
        "overload, too short fails requests that a busy service would have answered.",
    )
    batching: bool = Field(True, description="Merge requests into shared batches (False: one batch per request).")
    pad_multiple: int = Field(
        4, ge=1, le=64, description="Round engine batch rows and padded length up to a multiple of this. Merged "
        "batches come in ever new shapes, and on each new shape the bf16 engine builds kernels (10-25 ms) and keeps "
        "them (memory): 4 bounds both for a few percent of padding, 1 pads least (bench/shapes.py). Applies "
        "when the service loads the artifact itself; a StanceService passed to create_app keeps its own.",
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request body (413 beyond it); bounds parsing memory per request.",
    )
    drain_timeout_s: int = Field(30, ge=0, description="On shutdown, how long in-flight requests may take to finish.")
    max_connections: int = Field(
        1024, ge=1, description="Concurrent connections before uvicorn answers 503: bounds memory of requests still "
        "being read or split, which the sentence queue does not count yet.",
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str | None) -> str | None:
        if v is not None and v not in BACKENDS:
            raise ValueError(f"--backend {v!r} is not one of {', '.join(BACKENDS)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ServeSettings:
        problems = []
        if self.max_queue < MAX_SENTENCES:
            problems.append(
                f"--max-queue {self.max_queue} is below the {MAX_SENTENCES} sentences one /v1/classify request may "
                f"carry, so such a request could never be admitted; use --max-queue {MAX_SENTENCES} or more"
            )
        if self.batching and self.timeout_s * 1000 <= self.max_wait_ms:
            problems.append(
                f"--timeout-s {self.timeout_s:g} is not longer than --max-wait-ms {self.max_wait_ms:g}: requests "
                "would time out while waiting for a batch; raise --timeout-s or lower --max-wait-ms"
            )
        if self.workers is not None and self.workers > self.inference_threads:
            problems.append(
                f"--workers {self.workers} is more than the {self.inference_threads} inference threads (--threads); "
                "every worker needs a thread"
            )
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    @property
    def inference_threads(self) -> int:
        """Threads for inference in all (--threads, default every core)."""
        return self.threads or os.cpu_count() or 1

    @classmethod
    def from_options(cls, **options: Any) -> ServeSettings:
        """Validate CLI options, raising ConfigError that names each offending flag."""
        try:
            return cls(**options)
        except ValidationError as err:
            lines = ["invalid serve options:"]
            for e in err.errors():
                flag = "--" + str(e["loc"][0]).replace("_", "-") if e["loc"] else ""
                msg = e["msg"].removeprefix("Value error, ")
                lines.append(f"  {flag}: {msg} (got {e.get('input')!r})" if flag else f"  {msg}")
            raise ConfigError("\n".join(lines)) from None

    def check_artifact(self, max_length: int) -> None:
        """Refuse a token budget that one model input of `max_length` tokens would not fit."""
        if self.max_batch_tokens < max_length:
            raise ConfigError(
                f"--max-batch-tokens {self.max_batch_tokens} is below the model's max_length {max_length} "
                f"({self.artifact}): one long sentence alone would exceed the budget; use at least {max_length}"
            )


class Runtime:
    """Per-app state: settings, the loaded service, the scheduler, readiness and metrics."""

    def __init__(self, settings: ServeSettings, service: StanceService | None):
        self.settings = settings
        self.service = service
        self.scheduler: Scheduler | None = None
        self.status = "starting"
        self.metrics = Metrics(self)

    @property
    def model(self) -> ModelInfo:
        """Name and backend of the loaded model."""
        p = self.service.predictor
        return ModelInfo(name=p.manifest.name, backend=p.backend)

    def predict(self, rows: list[Encoded]) -> dict[str, np.ndarray]:
        """The scheduler's model call: tokenized sentences of several requests, scored together."""
        return self.service.predictor.predict_encoded(Encoded.concat(rows))

    async def prepare(self, work: Callable[..., T], *args: Any) -> T:
        """Run a request's own work (splitting, tokenizing) in the thread pool, counted as incoming.

        Callers submit to the scheduler right after, with no await in between, so a waiting
        lone entry always sees this request either incoming or queued.
        """
        with self.scheduler.incoming():
            return await run_in_threadpool(work, *args)

    async def score(self, request: Request, encoded: Encoded) -> dict[str, np.ndarray]:
        """Calibrated probabilities per head for the encoded sentences, through the shared scheduler."""
        n = encoded.n_inputs
        if not n:
            return {h: np.zeros((0, len(labels)), dtype=np.float32) for h, labels in self.service.heads.items()}
        if n > self.settings.max_queue:
            raise RequestError(
                f"request splits into {n} sentences, more than the {self.settings.max_queue} the queue "
                "holds (--max-queue); send fewer or shorter articles per request"
            )
        return await self.scheduler.infer(
            encoded.rows(), encoded.n_tokens, self.settings.timeout_s, lambda: _client_gone(request)
        )


async def _client_gone(request: Request) -> None:
    # After the body is read, the next ASGI message is http.disconnect: the client left
    # (or the response completed, by which time nobody is waiting for this).
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


# -- errors: one table from error class to status code ----------------------------------------------
_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (QueueFullError, 429),
    (OverloadedError, 503),  # draining or timed out
    (RequestError, 422),
    (StancekitError, 400),
)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (400, "Body could not be read (e.g. not UTF-8)."),
        (413, "Body larger than --max-body-bytes."),
        (422, "Invalid request: the message names the field and the rule."),
        (429, "Queue full; retry after the Retry-After seconds."),
        (503, "Shutting down or request timed out; retry after the Retry-After seconds."),
    )
}


def _error_json(status: int, kind: str, message: str, fields: list[str] | None = None, headers=None) -> JSONResponse:
    body = ErrorResponse(error=ErrorDetail(type=kind, message=message, fields=fields or []))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _validation_message(err: RequestValidationError) -> tuple[str, list[str]]:
    parts, fields = [], []
    for e in err.errors():
        loc = [str(x) for x in e["loc"][1:]] if e["loc"][:1] == ("body",) else [str(x) for x in e["loc"]]
        if e["type"] == "json_invalid":
            loc = []
        path = ".".join(loc) or "body"
        value = e.get("input")
        got = ""
        if e["type"].startswith(("string_too", "too_")) and isinstance(value, (str, list)):
            got = f" (got {len(value)} {'characters' if isinstance(value, str) else 'items'})"
        detail = f": {e['ctx']['error']}" if e["type"] == "json_invalid" and "ctx" in e else ""
        parts.append(f"{path}: {e['msg'].removeprefix('Value error, ')}{detail}{got}")
        fields.append(path)
    return "; ".join(parts), fields


async def _handle_error(request: Request, exc: Exception) -> Response:
    """Map every error class to one status code and the ErrorResponse body."""
    runtime: Runtime = request.app.state.runtime
    if isinstance(exc, CallerGone):  # nobody reads this answer; 499 keeps it apart in the metrics
        return Response(status_code=499)
    if isinstance(exc, RequestValidationError):
        message, fields = _validation_message(exc)
        return _error_json(422, "validation_error", message, fields)
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 413:
            runtime.metrics.rejected.labels("body_too_large").inc()
        return _error_json(exc.status_code, "http_error", str(exc.detail), headers=exc.headers)
    status = next(code for cls, code in _STATUS if isinstance(exc, cls))
    headers = None
    if isinstance(exc, OverloadedError):
        runtime.metrics.rejected.labels(type(exc).__name__).inc()
        retry = runtime.scheduler.retry_after_s() if runtime.scheduler else 1
        headers = {"Retry-After": str(retry)}
    return _error_json(status, type(exc).__name__, str(exc), headers=headers)


# -- request path ------------------------------------------------------------------------------------
def _prepare_articles(runtime: Runtime, texts: list[str]) -> tuple[list[SplitResult], Encoded]:
    splits = runtime.service.split(texts, [None] * len(texts))
    # Tokenized once, here in the request's thread: the scheduler counts and batches the token ids.
    return splits, runtime.service.predictor.encode([s.text for sp in splits for s in sp.sentences])


def _build_profiles(
    runtime: Runtime, body: ProfileRequest, splits: list[SplitResult], probs: dict[str, np.ndarray]
) -> list[ArticleProfile]:
    ids = [a.id for a in body.articles]
    return runtime.service.profiles_from_probs(splits, ids, probs, include_sentences=body.include_sentences)


def _predictions(runtime: Runtime, texts: list[str], probs: dict[str, np.ndarray]) -> list[SentencePrediction]:
    rows = head_predictions(probs, runtime.service.heads, runtime.service.thresholds)
    return [SentencePrediction(text=s, heads=p) for s, p in zip(texts, rows)]


async def classify(body: ClassifyRequest, request: Request, runtime: RuntimeDep) -> ClassifyResponse:
    """Labels and calibrated probabilities of every head for each sentence, in request order."""
    encoded = await runtime.prepare(runtime.service.predictor.encode, body.sentences)
    probs = await runtime.score(request, encoded)
    predictions = await run_in_threadpool(_predictions, runtime, body.sentences, probs)
    return ClassifyResponse(model=runtime.model, predictions=predictions)


async def profile(body: ProfileRequest, request: Request, runtime: RuntimeDep) -> ProfileResponse:
    """A stance profile per article, identical to `StanceService.profile` for the same text."""
    splits, encoded = await runtime.prepare(_prepare_articles, runtime, [a.text for a in body.articles])
    probs = await runtime.score(request, encoded)
    profiles = await run_in_threadpool(_build_profiles, runtime, body, splits, probs)
    return ProfileResponse(model=runtime.model, profiles=profiles)


async def healthz() -> HealthResponse:
    """The process is up (says nothing about the model)."""
    return HealthResponse(status="ok")


async def readyz(runtime: RuntimeDep) -> Response:
    """200 once the model is loaded and warmed; 503 while starting or draining."""
    ready = runtime.status == "ready"
    body = HealthResponse(status=runtime.status, model=runtime.model if runtime.service else None)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text exposition."""
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)


# -- app -----------------------------------------------------------------------------------------------
def create_app(settings: ServeSettings, service: StanceService | None = None) -> FastAPI:
    """The FastAPI app; the model loads (or `service` is used) and warms in the lifespan."""
    runtime = Runtime(settings, service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime.service is None:
            from stancekit.model.artifact import read_manifest

            settings.check_artifact(read_manifest(settings.artifact).max_length)
            runtime.service = await run_in_threadpool(
                StanceService.from_artifact, settings.artifact, backend=settings.backend,
                threads=settings.inference_threads, workers=settings.workers or settings.inference_threads,
                pad_multiple=settings.pad_multiple,
            )
        else:
            settings.check_artifact(runtime.service.predictor.manifest.max_length)
        await run_in_threadpool(runtime.service.predictor.predict_proba, WARMUP_TEXTS)
        # torch, transformers and the model leave ~400,000 long-lived objects that every full
        # collection walks again: ~145 ms with the GIL held, a stall for every request in
        # flight. Frozen, they are skipped; only objects made while serving are collected.
        gc.collect()
        gc.freeze()
        runtime.scheduler = Scheduler(
            runtime.predict, settings.max_batch_tokens, settings.max_wait_ms, settings.max_queue,
            batching=settings.batching, observer=runtime.metrics, concurrency=runtime.service.predictor.workers,
        )
        runtime.scheduler.start()
        runtime.status = "ready"
        logger.info("stancekit serving %s (%s) on %s:%d", runtime.model.name, runtime.model.backend, settings.host, settings.port)
        try:
            yield
        finally:
            runtime.status = "draining"
            await runtime.scheduler.close()

    app = FastAPI(
        title="stancekit", version="1", lifespan=lifespan,
        description="Sentence stance and sentiment, and article stance profiles. Limits: see docs/http.md.",
    )
    app.state.runtime = runtime
    for exc in (StancekitError, RequestValidationError, StarletteHTTPException, CallerGone):
        app.add_exception_handler(exc, _handle_error)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics)
    errors = ERROR_RESPONSES
    app.post("/v1/classify", response_model=ClassifyResponse, responses=errors, tags=["v1"])(classify)
    app.post("/v1/profile", response_model=ProfileResponse, responses=errors, tags=["v1"])(profile)
    app.get("/healthz", response_model=HealthResponse, tags=["ops"])(healthz)
    app.get(
        "/readyz", response_model=HealthResponse, tags=["ops"],
        responses={503: {"model": HealthResponse, "description": "Starting or draining."}},
    )(readyz)
    app.get(
        "/metrics", response_class=PlainTextResponse, tags=["ops"],
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
    )(metrics)
    return app


def run_server(settings: ServeSettings) -> None:
    """Serve with uvicorn until SIGINT/SIGTERM, then finish in-flight and queued work."""
    import uvicorn

    from stancekit.model.artifact import read_manifest

    # Requests are tokenized a few sentences at a time on request threads; Rust worker threads
    # on top would only take cores from the engine workers.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    settings.check_artifact(read_manifest(settings.artifact).max_length)  # fail before binding, in one line
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, access_log=False, log_level="info",
        timeout_graceful_shutdown=settings.drain_timeout_s, limit_concurrency=settings.max_connections,
    )
