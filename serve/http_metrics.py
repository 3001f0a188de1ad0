"""Prometheus metrics of the HTTP service and the two ASGI middlewares that feed them.

`Metrics` holds one app's collectors in their own registry; the scheduler reports each
batch and each dropped entry to it. `RequestMetrics` counts and times every request by
route template and status; `BodyLimit` answers 413 for bodies over --max-body-bytes and
counts the refusal. Both middlewares find the metrics at `app.state.runtime.metrics`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException

from stancekit.serve.api_schemas import ErrorDetail, ErrorResponse

if TYPE_CHECKING:
    from stancekit.serve.http import Runtime


class Metrics:
    """Prometheus metrics of one app, in their own registry (several apps may live in one process)."""

    def __init__(self, runtime: Runtime):
        r = self.registry = CollectorRegistry()
        self.requests = Counter("stancekit_http_requests", "HTTP requests by route and status.", ["route", "status"], registry=r)
        self.latency = Histogram(
            "stancekit_http_request_seconds", "Request latency by route.", ["route"], registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.rejected = Counter("stancekit_rejected_requests", "Requests refused by reason.", ["reason"], registry=r)
        self.dropped = Counter("stancekit_dropped_sentences", "Queued sentences dropped: caller left.", registry=r)
        queue = Gauge("stancekit_queue_depth", "Work waiting for a batch.", ["unit"], registry=r)
        queue.labels("sentences").set_function(lambda: runtime.scheduler.queued_sentences if runtime.scheduler else 0)
        queue.labels("requests").set_function(lambda: runtime.scheduler.queued_requests if runtime.scheduler else 0)
        self.batch_sentences = Histogram(
            "stancekit_batch_sentences", "Sentences per inference batch.", registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
        )
        self.batch_tokens = Histogram(
            "stancekit_batch_tokens", "Tokens per inference batch (unpadded).", registry=r,
            buckets=(32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768),
        )
        self.inference = Histogram(
            "stancekit_inference_seconds", "Model time per batch (tokenise, forward, softmax).", registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def on_batch(self, sentences: int, tokens: int, seconds: float) -> None:
        """Scheduler hook: one batch ran."""
        self.batch_sentences.observe(sentences)
        self.batch_tokens.observe(tokens)
        self.inference.observe(seconds)

    def on_dropped(self, sentences: int) -> None:
        """Scheduler hook: a caller left while its sentences were queued."""
        self.dropped.inc(sentences)


# -- middleware -------------------------------------------------------------------------------------
class BodyLimit:
    """413 for bodies over `max_bytes`: at once from Content-Length, or while a chunked body streams in."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    def _message(self, size: str) -> str:
        return f"request body of {size} bytes is larger than the {self.max_bytes} allowed (--max-body-bytes)"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            scope["app"].state.runtime.metrics.rejected.labels("body_too_large").inc()
            # Answered before routing, so FastAPI's handlers never see it: build their ErrorResponse here.
            body = ErrorResponse(error=ErrorDetail(type="http_error", message=self._message(length.decode())))
            response = JSONResponse(body.model_dump(), status_code=413)
            return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # FastAPI re-raises HTTPException from body reading: reaches serve.http._handle_error
                raise StarletteHTTPException(413, self._message(f"more than {self.max_bytes}"))
            return message

        await self.app(scope, limited, send)


def _known_path(scope) -> str:
    # Requests refused before routing (413 from Content-Length) still count under their route.
    paths = {getattr(r, "path", None) for r in scope["app"].router.routes}
    return scope["path"] if scope["path"] in paths else "unmatched"


class RequestMetrics:
    """Count requests by route template and status, and time them."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The route template, not the raw path, keeps label cardinality bounded.
            route = getattr(scope.get("route"), "path", None) or _known_path(scope)
            metrics = scope["app"].state.runtime.metrics
            metrics.requests.labels(route, str(status)).inc()
            metrics.latency.labels(route).observe(time.perf_counter() - started)
