"""User tokens on warm workers and across worker processes (``accounts.tokens``).

Real commits (``committed_db``): nothing read inside a transaction is cached.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from accounts import services, tokens
from accounts.models import TenantUser
from tenants import cache
from tenants.cache import registry_cache
from tenants.models import Tenant
from tests.conftest import JsonClient
from tests.test_fast_resolution import table_of
from tests.test_two_workers import PROPAGATION_SECONDS, answers_from_both_workers, server  # noqa: F401 (a fixture)

INVALID = {"error": "Invalid token"}


@pytest.fixture
def dora(committed_db):
    """A committed member of acme with a token; deleted afterwards (with her tokens)."""
    assert registry_cache.wait_until_ready()
    connection.set_schema_to_public()
    with schema_context("acme"):
        TenantUser.objects.filter(username="dora").delete()
        acme = Tenant.objects.get(pk="acme")
        user = services.create_user(acme, username="dora", name="Dora", role="member", password="a-long-passphrase-1")
        raw = services.issue_token(user, "tests")
    # Notifications of these commits may still be on their way: let them land first.
    time.sleep(0.3)
    tokens.token_cache.forget(None)
    yield user, raw
    connection.set_schema_to_public()
    with schema_context("acme"):
        TenantUser.objects.filter(username="dora").delete()


def statements(client: JsonClient, path: str = "/api/me") -> tuple[int, list[tuple[str, str]]]:
    with CaptureQueriesContext(connection) as sent:
        status = client.get(path).status_code
    return status, [table_of(query["sql"]) for query in sent.captured_queries]


def test_a_warm_worker_checks_a_token_without_a_query(dora):
    _, raw = dora
    client = JsonClient(token=raw, tenant="acme")
    status, cold = statements(client)
    assert status == 200 and ("SELECT", "accounts_authtoken") in cold
    status, warm = statements(client)
    assert status == 200 and ("SELECT", "accounts_authtoken") not in warm
    assert client.get("/api/me").json()["id"] == "acme"


def test_a_signed_out_token_is_refused_at_once(dora):
    _, raw = dora
    client = JsonClient(token=raw, tenant="acme")
    assert [client.get("/api/me").status_code for _ in range(2)] == [200, 200]
    assert client.delete("/api/auth/token").status_code == 204
    assert (client.get("/api/me").status_code, client.get("/api/me").json()) == (401, INVALID)


def test_a_deactivated_user_and_a_new_role_are_seen_at_once(dora):
    user, raw = dora
    client = JsonClient(token=raw, tenant="acme")
    assert [client.get("/api/keys").status_code for _ in range(2)] == [403, 403]  # tenant admins only
    with schema_context("acme"):
        services.update_user(user.pk, {"role": "admin"})
    assert client.get("/api/keys").status_code == 200
    with schema_context("acme"):
        services.update_user(user.pk, {"is_active": False})
    assert client.get("/api/me").status_code == 401


def test_the_cache_keeps_no_password_and_each_request_gets_its_own_user(dora):
    _, raw = dora
    with schema_context("acme"):
        first = tokens.find(raw)
        with CaptureQueriesContext(connection) as warm:
            second = tokens.find(raw)
        assert warm.captured_queries == []
        assert first.user is not second.user and first.user.pk == second.user.pk
        cached_user_values = next(iter(tokens.token_cache._rows.values()))[1]
        assert second.user.password not in cached_user_values  # loaded from the database on demand
        assert second.user.check_password("a-long-passphrase-1")
        second.user.name = "Changed here only"
        assert tokens.find(raw).user.name == "Dora"


def test_inside_a_transaction_the_cache_neither_answers_nor_learns(dora):
    from django.db import transaction

    _, raw = dora
    with schema_context("acme"), transaction.atomic():
        with CaptureQueriesContext(connection) as read:
            assert tokens.find(raw).user.username == "dora"
        assert ("SELECT", "accounts_authtoken") in [table_of(q["sql"]) for q in read.captured_queries]
    assert len(tokens.token_cache) == 0


def test_a_change_of_the_registry_forgets_every_token(dora):
    """A tenant purged and made anew under the same name must not inherit the old tenant's tokens."""
    _, raw = dora
    with schema_context("acme"):
        tokens.find(raw)
    assert len(tokens.token_cache) == 1
    registry_cache.notified(cache.CHANNEL, "tenants_tenant")
    assert len(tokens.token_cache) == 0


def test_a_deactivation_reaches_both_workers_within_a_second(dora, server):  # noqa: F811
    user, raw = dora
    port, log = server
    headers = {"X-Tenant-ID": "acme", "Authorization": f"Token {raw}"}
    answers = answers_from_both_workers(port, headers, log)
    assert {status for status, _ in answers} == {200}
    assert {body["id"] for _, body in answers} == {"acme"}
    with schema_context("acme"):
        services.update_user(user.pk, {"is_active": False})
    time.sleep(PROPAGATION_SECONDS)
    assert {status for status, _ in answers_from_both_workers(port, headers, log)} == {401}


def test_the_user_a_jwt_names_is_read_from_memory_and_a_deactivation_seen_at_once(dora):
    from accounts import service_tokens

    user, _ = dora
    with schema_context("acme"):
        access = service_tokens.issue_for_user(Tenant.objects.get(pk="acme"), user).access
    client = JsonClient(HTTP_AUTHORIZATION=f"Bearer {access}")
    status, cold = statements(client)
    assert status == 200 and ("SELECT", "accounts_tenantuser") in cold
    status, warm = statements(client)
    assert status == 200 and ("SELECT", "accounts_tenantuser") not in warm
    with schema_context("acme"):
        services.update_user(user.pk, {"is_active": False})
    assert client.get("/api/me").status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("length", [128, 129, 5000])
def test_a_token_of_any_length_is_a_401_in_json_on_tenant_and_platform_routes(length):
    raw = "x" * length
    tenant = JsonClient(token=raw, tenant="acme").get("/api/users")
    platform = JsonClient(token=raw).get("/admin/tenants")
    assert (tenant.status_code, tenant.json()) == (401, INVALID)
    assert (platform.status_code, platform.json()) == (401, INVALID)


@pytest.mark.django_db
def test_a_token_longer_than_any_issued_is_refused_without_a_query():
    with CaptureQueriesContext(connection) as sent:
        assert JsonClient(token="x" * 129, tenant="acme").get("/api/users").status_code == 401
    assert ("SELECT", "accounts_authtoken") not in [table_of(q["sql"]) for q in sent.captured_queries]
