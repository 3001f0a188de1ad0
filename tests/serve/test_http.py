"""HTTP service: routes, validation, 413/422/429/503 paths, metrics, cross-request batching."""

from __future__ import annotations

import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from stancekit.errors import ConfigError
from stancekit.serve.api_schemas import MAX_ARTICLE_CHARS, MAX_SENTENCE_CHARS, MAX_SENTENCES
from stancekit.serve.http import ServeSettings, create_app
from stancekit.serve.schemas import ArticleProfile
from stancekit.serve.service import StanceService

SENTENCES = ["Japan signed a gas deal with Russia.", "Officials in India backed the sanctions against Moscow."]


@pytest.fixture(scope="module")
def service(tiny_artifact) -> StanceService:
    """One loaded tiny model shared by the apps of this module (each app still warms it)."""
    return StanceService.from_artifact(tiny_artifact)


class GatedPredict:
    """Wraps predict_encoded: records each batch (token ids per sentence) and, once closed, holds the worker."""

    def __init__(self, inner):
        self.inner = inner
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()
        self.batches: list[list[tuple[int, ...]]] = []

    def close(self) -> None:
        self.open.clear()
        self.entered.clear()
        self.batches.clear()

    def __call__(self, encoded):
        self.batches.append([tuple(ids) for ids in encoded.ids])
        self.entered.set()
        assert self.open.wait(30), "test gate never released"
        return self.inner(encoded)


@pytest.fixture
def gated(service, monkeypatch) -> GatedPredict:
    """The shared service's predictor, gated and recorded for this test."""
    gate = GatedPredict(service.predictor.predict_encoded)
    monkeypatch.setattr(service.predictor, "predict_encoded", gate)
    return gate


def _client(service, tiny_artifact, **options) -> TestClient:
    return TestClient(create_app(ServeSettings(artifact=tiny_artifact, **options), service=service))


def _wait_until(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _metric(client: TestClient, line_prefix: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# -- routes ---------------------------------------------------------------------------------------------
def test_classify_returns_both_heads_per_sentence_in_order(service, tiny_artifact):
    with _client(service, tiny_artifact) as client:
        r = client.post("/v1/classify", json={"sentences": SENTENCES})
    assert r.status_code == 200
    body = r.json()
    assert body["api_version"] == "v1" and body["model"]["backend"] == "torch"
    assert [p["text"] for p in body["predictions"]] == SENTENCES
    expected = service.classify(SENTENCES)
    for got, want in zip(body["predictions"], expected):
        assert set(got["heads"]) == {"stance", "sentiment"}
        for head, hp in want.heads.items():
            assert got["heads"][head]["label"] == hp.label
            assert got["heads"][head]["probabilities"] == pytest.approx(hp.probabilities, abs=1e-6)


def test_profile_equals_python_api_profile(service, tiny_artifact, sample_article):
    articles = [{"id": "sochi", "text": sample_article}, {"id": "short", "text": SENTENCES[0]}]
    with _client(service, tiny_artifact) as client:
        r = client.post("/v1/profile", json={"articles": articles, "include_sentences": True})
    assert r.status_code == 200
    got = [ArticleProfile.model_validate(p) for p in r.json()["profiles"]]
    want = service.profile_many([a["text"] for a in articles], [a["id"] for a in articles], include_sentences=True)
    assert got == want


def test_profile_of_empty_article_has_no_sentences(service, tiny_artifact):
    with _client(service, tiny_artifact) as client:
        r = client.post("/v1/profile", json={"articles": [{"text": ""}]})
    assert r.status_code == 200
    assert r.json()["profiles"][0]["n_sentences"] == 0


def test_health_and_readiness_follow_the_lifespan(service, tiny_artifact):
    app = create_app(ServeSettings(artifact=tiny_artifact), service=service)
    assert app.state.runtime.status == "starting"
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "ok", "model": None}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        app.state.runtime.status = "draining"  # what shutdown sets before finishing queued work
        assert client.get("/readyz").status_code == 503


@pytest.fixture(autouse=True)
def _unfreeze_gc():
    # Startup freezes every live object (see the test below); give them back to the collector.
    yield
    gc.unfreeze()


def test_startup_freezes_the_loaded_objects_out_of_garbage_collection(service, tiny_artifact):
    gc.unfreeze()
    with _client(service, tiny_artifact) as client:
        assert client.get("/readyz").status_code == 200
        assert gc.get_freeze_count() > 10_000  # torch, transformers, the model: walked by no collection


def test_openapi_shows_field_limits(service, tiny_artifact):
    with _client(service, tiny_artifact) as client:
        schema = client.get("/openapi.json").json()
    sentences = schema["components"]["schemas"]["ClassifyRequest"]["properties"]["sentences"]
    assert sentences["maxItems"] == MAX_SENTENCES and sentences["items"]["maxLength"] == MAX_SENTENCE_CHARS
    assert {"413", "422", "429", "503"} <= set(schema["paths"]["/v1/classify"]["post"]["responses"])


# -- validation and limits -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/v1/classify", {"sentences": ["ok"] * (MAX_SENTENCES + 1)}, "sentences"),
        ("/v1/classify", {"sentences": ["ok", "x" * (MAX_SENTENCE_CHARS + 1)]}, "sentences.1"),
        ("/v1/classify", {"sentences": []}, "sentences"),
        ("/v1/classify", {"sentences": ["ok"], "extra": 1}, "extra"),
        ("/v1/profile", {"articles": [{"text": "x" * (MAX_ARTICLE_CHARS + 1)}]}, "articles.0.text"),
        ("/v1/profile", {"articles": [{"id": 3, "text": "ok"}]}, "articles.0.id"),
    ],
)
def test_invalid_request_is_422_naming_the_field(service, tiny_artifact, path, payload, field):
    with _client(service, tiny_artifact) as client:
        r = client.post(path, json=payload)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["type"] == "validation_error" and field in error["fields"]
    assert error["message"].startswith(field)


def test_malformed_json_is_422(service, tiny_artifact):
    with _client(service, tiny_artifact) as client:
        r = client.post("/v1/classify", content=b'{"sentences": [', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["error"]["message"]


def test_profile_splitting_into_more_sentences_than_the_queue_is_422(service, tiny_artifact):
    text = " ".join(f"Sentence {i} is here." for i in range(300))
    with _client(service, tiny_artifact, max_queue=MAX_SENTENCES) as client:
        r = client.post("/v1/profile", json={"articles": [{"text": text}]})
    assert r.status_code == 422
    assert "--max-queue" in r.json()["error"]["message"] and "300 sentences" in r.json()["error"]["message"]


def test_body_over_limit_is_413_with_and_without_content_length(service, tiny_artifact):
    big = b'{"sentences": ["' + b"x" * 3000 + b'"]}'
    with _client(service, tiny_artifact, max_body_bytes=2048) as client:
        declared = client.post("/v1/classify", content=big, headers={"content-type": "application/json"})
        chunked = client.post(
            "/v1/classify", content=iter([big[:1500], big[1500:]]), headers={"content-type": "application/json"}
        )
        rejected = _metric(client, 'stancekit_rejected_requests_total{reason="body_too_large"}')
        counted = _metric(client, 'stancekit_http_requests_total{route="/v1/classify",status="413"}')
    assert counted == 2
    for r in (declared, chunked):
        assert r.status_code == 413 and "--max-body-bytes" in r.json()["error"]["message"]
    assert rejected == 2


def test_full_queue_answers_429_with_retry_after(service, tiny_artifact, gated):
    with _client(service, tiny_artifact, max_queue=MAX_SENTENCES) as client, ThreadPoolExecutor(2) as pool:
        gated.close()
        first = pool.submit(client.post, "/v1/classify", json={"sentences": ["held in the worker"]})
        assert gated.entered.wait(20)
        waiting = pool.submit(client.post, "/v1/classify", json={"sentences": ["queued"] * 200})
        _wait_until(lambda: client.app.state.runtime.scheduler.queued_sentences == 200, "200 queued sentences")
        refused = client.post("/v1/classify", json={"sentences": ["one too many"] * 100})
        gated.open.set()
        assert first.result().status_code == 200 and waiting.result().status_code == 200
        assert _metric(client, 'stancekit_rejected_requests_total{reason="QueueFullError"}') == 1
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "--max-queue" in refused.json()["error"]["message"]


def test_request_past_timeout_is_503_and_its_queued_sentences_are_dropped(service, tiny_artifact, gated):
    with _client(service, tiny_artifact, timeout_s=0.3) as client, ThreadPoolExecutor(1) as pool:
        gated.close()
        first = pool.submit(client.post, "/v1/classify", json={"sentences": ["held in the worker"]})
        assert gated.entered.wait(20)
        late = client.post("/v1/classify", json={"sentences": ["a", "b", "c"]})
        queued_after = client.app.state.runtime.scheduler.queued_sentences
        gated.open.set()
        first.result()
        dropped = _metric(client, "stancekit_dropped_sentences_total")
    assert late.status_code == 503 and "Retry-After" in late.headers
    assert "--timeout-s" in late.json()["error"]["message"]
    assert queued_after == 0 and dropped == 3


# -- batching and metrics -------------------------------------------------------------------------------
@pytest.mark.parametrize("batching", [True, False])
def test_concurrent_requests_merge_into_one_batch_only_with_batching(service, tiny_artifact, gated, batching):
    requests = [[f"Request {i} sentence {j}." for j in range(i + 1)] for i in range(3)]
    with _client(service, tiny_artifact, batching=batching) as client, ThreadPoolExecutor(4) as pool:
        gated.close()
        first = pool.submit(client.post, "/v1/classify", json={"sentences": ["held in the worker"]})
        assert gated.entered.wait(20)
        later = [pool.submit(client.post, "/v1/classify", json={"sentences": s}) for s in requests]
        _wait_until(lambda: client.app.state.runtime.scheduler.queued_requests == 3, "3 queued requests")
        gated.open.set()
        responses = [f.result() for f in [first, *later]]
        batches_metric = _metric(client, "stancekit_batch_sentences_count")
    assert all(r.status_code == 200 for r in responses)
    for r, sent in zip(responses[1:], requests):
        assert [p["text"] for p in r.json()["predictions"]] == sent
    after_first = gated.batches[1:]

    def ids(texts):
        return sorted(tuple(x) for x in service.predictor.encode(texts).ids)

    if batching:
        assert len(after_first) == 1 and sorted(after_first[0]) == ids([s for req in requests for s in req])
    else:
        assert sorted(map(sorted, after_first)) == sorted(ids(req) for req in requests)
    assert batches_metric == 1 + len(after_first)


def test_metrics_count_requests_by_route_and_status(service, tiny_artifact):
    with _client(service, tiny_artifact) as client:
        client.post("/v1/classify", json={"sentences": SENTENCES})
        client.post("/v1/classify", json={"sentences": SENTENCES})
        client.post("/v1/classify", json={"sentences": []})
        text = client.get("/metrics").text
        assert 'stancekit_http_requests_total{route="/v1/classify",status="200"} 2.0' in text
        assert 'stancekit_http_requests_total{route="/v1/classify",status="422"} 1.0' in text
        assert _metric(client, "stancekit_batch_tokens_count") == 2
        assert _metric(client, "stancekit_batch_sentences_sum") == 4
        assert _metric(client, "stancekit_inference_seconds_count") == 2
        assert _metric(client, 'stancekit_queue_depth{unit="sentences"}') == 0


# -- settings --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "flags"),
    [
        ({"max_queue": 10}, ["--max-queue"]),
        ({"timeout_s": 0.001, "max_wait_ms": 5}, ["--timeout-s", "--max-wait-ms"]),
        ({"backend": "tpu"}, ["--backend"]),
        ({"port": -1}, ["--port"]),
        ({"threads": 2, "workers": 3}, ["--workers", "--threads"]),
    ],
)
def test_settings_refuse_impossible_combinations_naming_the_flags(tmp_path, options, flags):
    with pytest.raises(ConfigError) as err:
        ServeSettings.from_options(artifact=tmp_path, **options)
    for flag in flags:
        assert flag in str(err.value)


def test_start_up_refuses_budget_below_model_max_length(service, tiny_artifact):
    app = create_app(ServeSettings(artifact=tiny_artifact, max_batch_tokens=16), service=service)
    with pytest.raises(ConfigError, match="--max-batch-tokens 16 is below the model's max_length 32"), TestClient(app):
        pass
