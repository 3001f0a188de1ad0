"""Property-based run against the published OpenAPI schema: no 5xx, responses match the schema.

Each operation gets schema-valid (positive) and schema-violating (negative) requests from
schemathesis; every default check runs (no server error, status code, content type and
response schema conformance, valid data accepted, invalid data rejected).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from stancekit.serve.http import ServeSettings, create_app

POSTS = [("POST", "/v1/classify"), ("POST", "/v1/profile")]
GETS = [("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")]  # no inputs: nothing to negate
CASES = [(*op, GenerationMode.POSITIVE) for op in POSTS + GETS] + [(*op, GenerationMode.NEGATIVE) for op in POSTS]
# Examples per operation and mode (an operation without inputs stops after one): about 300 in all.
MAX_EXAMPLES = {GenerationMode.POSITIVE: 100, GenerationMode.NEGATIVE: 50}


@pytest.fixture(scope="module")
def api_schema(tiny_artifact):
    """The service's own OpenAPI schema, served in-process by an app on the tiny model."""
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(ServeSettings(artifact=tiny_artifact)))


def test_every_operation_of_the_schema_is_exercised(api_schema):
    published = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert published == set(POSTS + GETS)


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_operation_never_answers_5xx_and_matches_its_schema(api_schema, method, path, mode):
    operation = api_schema[path][method]
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES[mode], deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        statuses.append(case.call_and_validate().status_code)

    check()
    # Not vacuous: POST operations ran most of their budget; negative requests were all refused.
    assert len(statuses) >= (MAX_EXAMPLES[mode] // 2 if method == "POST" else 1)
    if mode is GenerationMode.NEGATIVE:
        assert all(400 <= s < 500 for s in statuses)
