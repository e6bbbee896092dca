"""Fuzzing both APIs from their own OpenAPI schema (schemathesis), authenticated.

Every generated request, fitting the schema or deliberately not, must get an answer
the schema describes: no 5xx, a documented status code and shape, JSON errors. Each
case runs in a savepoint that is rolled back, so one case's writes (a revoked token,
a deleted user, a provisioned tenant) never change the next case's starting point.
The number of examples is bounded so that CI stays fast.

Beyond what the schema allows, every operation also gets what an attacker sends: NUL bytes
in every string it carries, JSON bodies nested far deeper than any body needs, and ``?format=``
values no renderer knows. Those must be refused with a documented 4xx, never a 5xx.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.settings import spectacular_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import positive_data_acceptance

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION_AND_MODE = 15
HOSTILE_EXAMPLES_PER_OPERATION_AND_KIND = 5


def _load_schema():
    # The same document /api/schema/ serves, generated without a request (no database needed).
    document = spectacular_settings.DEFAULT_GENERATOR_CLASS().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    loaded.app = get_wsgi_application()
    return loaded


def _fixed_headers(operation, keys) -> dict[str, str]:
    if operation.path.startswith("/api/"):
        return {"X-Tenant-ID": "acme", "Authorization": f"Token {keys.alice}"}
    return {"Authorization": f"Token {keys.admin}"}


SCHEMA = _load_schema()
OPERATIONS = sorted(result.ok().label for result in SCHEMA.get_all_operations())


@pytest.fixture(autouse=True)
def _keep_the_test_transaction():
    """Like Django's test client: a request's end must not close the connection holding the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_the_served_schema_is_the_fuzzed_one(anon):
    served = anon.get("/api/schema/?format=json").json()
    assert sorted(served["paths"]) == sorted(SCHEMA.raw_schema["paths"])


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_api_answers_as_its_schema_says(label, mode, keys):
    operation = SCHEMA.find_operation_by_label(label)
    fixed = _fixed_headers(operation, keys)

    # Our validation is stricter than a schema can say (reserved ids, unique usernames, IANA zones), so
    # "a schema-valid request must be accepted" does not hold; every other check does.
    excluded = [positive_data_acceptance]

    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        with transaction.atomic():
            case.call_and_validate(headers=fixed, excluded_checks=excluded)
            transaction.set_rollback(True)

    try:
        check()
    except Unsatisfiable:
        # Nothing to make invalid: the operation takes no parameters and no body.
        assert mode is GenerationMode.NEGATIVE


# --- What the schema does not allow, but an attacker sends ---------------------------------------

DEEP_NESTING = 200
UNKNOWN_FORMATS = ["xyz", "openapi", "yaml", "html", "json\x00", "a" * 300]


def _with_nul(value: object) -> object:
    """``value`` with a NUL byte in every string, keys of objects included."""
    if isinstance(value, str):
        return value[: len(value) // 2] + "\x00" + value[len(value) // 2 :]
    if isinstance(value, dict):
        return {_with_nul(key): _with_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_nul(item) for item in value]
    return value


def _nested(depth: int, leaf: object) -> object:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"name": value}
    return value


def _make_hostile(case, kind: str, fmt: str) -> None:
    if kind == "nul":
        # Values only: the parameters' names are the schema's.
        case.path_parameters = {name: _with_nul(value) for name, value in (case.path_parameters or {}).items()}
        case.query = {**{name: _with_nul(value) for name, value in (case.query or {}).items()}, "q": "\x00"}
        if not isinstance(case.body, NotSet):
            case.body = _with_nul(case.body)
    elif kind == "deep":
        # Far past the parser's bound (core.validation.MAX_JSON_DEPTH); schemathesis itself walks a case's
        # body recursively, so the thousands of levels are sent by tests/test_hardening.py instead.
        case.body = _nested(DEEP_NESTING, case.body if isinstance(case.body, (dict, list, str, int)) else "x")
        case.media_type = "application/json"
    elif kind == "format":
        case.query = {**(case.query or {}), "format": fmt}


@pytest.mark.parametrize("kind", ["nul", "deep", "format"])
@pytest.mark.parametrize("label", OPERATIONS)
def test_hostile_inputs_get_a_documented_4xx(label, kind, keys):
    operation = SCHEMA.find_operation_by_label(label)
    fixed = _fixed_headers(operation, keys)
    takes_a_body = operation.body is not None and len(operation.body) > 0

    @settings(
        max_examples=HOSTILE_EXAMPLES_PER_OPERATION_AND_KIND,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE), fmt=st.sampled_from(UNKNOWN_FORMATS))
    def check(case, fmt):
        _make_hostile(case, kind, fmt)
        with transaction.atomic():
            response = case.call_and_validate(headers=fixed, excluded_checks=[positive_data_acceptance])
            transaction.set_rollback(True)
        if kind != "deep" or takes_a_body:
            assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])

    check()
