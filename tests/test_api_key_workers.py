"""API keys on warm workers and across worker processes (real commits: nothing read in a transaction is cached)."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from accounts import keys as key_module
from accounts import services
from accounts.models import ApiKey
from tenants.cache import registry_cache
from tests.test_api_keys import INVALID, bearer, new_key
from tests.test_fast_resolution import table_of
from tests.test_two_workers import PROPAGATION_SECONDS, answers_from_both_workers, server  # noqa: F401 (a fixture)


@pytest.fixture
def committed_key(committed_db):
    """A read key of acme, committed; every key of acme is deleted afterwards."""
    connection.set_schema_to_public()
    raw_key = new_key("acme")
    yield raw_key
    with schema_context("acme"):
        ApiKey.objects.all().delete()


def test_a_warm_worker_checks_a_key_without_a_query_and_a_revocation_at_once(committed_key):
    assert registry_cache.wait_until_ready()
    client = bearer(committed_key)
    # Notifications of the session's earlier commits may still be on their way: let them land first.
    client.get("/api/users")
    time.sleep(0.3)
    client.get("/api/users")
    key_module.key_cache.forget(None)
    with CaptureQueriesContext(connection) as cold:
        assert client.get("/api/users").status_code == 200
    assert ("SELECT", "accounts_apikey") in [table_of(q["sql"]) for q in cold.captured_queries]
    with CaptureQueriesContext(connection) as warm:
        response = client.get("/api/users")
    assert response.status_code == 200 and response.json()["tenant"] == "acme"
    # The view's own queries and the rate limit's counter: nothing for the key, nothing for the tenant.
    assert [table_of(q["sql"]) for q in warm.captured_queries] == [
        ("INSERT", "public.tenants_ratelimitcounter"),
        ("SELECT", "accounts_tenantuser"),
    ]
    with schema_context("acme"):
        services.revoke_api_key(ApiKey.objects.get().pk)
    assert client.get("/api/users").json() == INVALID


def test_revocation_reaches_both_workers_within_a_second(committed_key, server):  # noqa: F811
    port, log = server
    headers = {"Authorization": f"Bearer {committed_key}"}
    answers = answers_from_both_workers(port, headers, log)
    assert {status for status, _ in answers} == {200}
    assert {body["id"] for _, body in answers} == {"acme"}
    with schema_context("acme"):
        services.revoke_api_key(ApiKey.objects.get().pk)
    time.sleep(PROPAGATION_SECONDS)
    assert {status for status, _ in answers_from_both_workers(port, headers, log)} == {401}
