"""Fuzzing both APIs from their own OpenAPI schema (schemathesis), authenticated.

Every generated request, fitting the schema or deliberately not, must get an answer
the schema describes: no 5xx, a documented status code and shape, JSON errors. Each
case runs in a savepoint that is rolled back, so one case's writes (a revoked token,
a deleted user, a provisioned tenant) never change the next case's starting point.
The number of examples is bounded so that CI stays fast.
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
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION_AND_MODE = 15


def _load_schema():
    # The same document /api/schema/ serves, generated without a request (no database needed).
    document = spectacular_settings.DEFAULT_GENERATOR_CLASS().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    loaded.app = get_wsgi_application()
    return loaded


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
    if operation.path.startswith("/api/"):
        fixed = {"X-Tenant-ID": "acme", "Authorization": f"Token {keys.alice}"}
    else:
        fixed = {"Authorization": f"Token {keys.admin}"}

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
