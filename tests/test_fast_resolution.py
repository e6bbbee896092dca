"""Tenant resolution without database round trips on a warm worker (issue 5, point 2).

These tests need real commits (the cache never trusts what it reads inside a
transaction), so they use ``committed_db`` instead of the django_db mark.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants import services
from tenants.cache import registry_cache
from tenants.models import Plan, Tenant
from tenants.selectors import get_tenant
from tests.conftest import JsonClient, wsgi_request


@pytest.fixture
def warm_cache(committed_db):
    assert registry_cache.wait_until_ready()
    registry_cache.invalidate()
    yield committed_db


def sql_of(context: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in context.captured_queries]


def table_of(sql: str) -> tuple[str, str]:
    """A statement's verb and first table, enough to tell the queries apart."""
    verb = sql.split()[0].upper()
    match = re.search(r"\b(?:FROM|INTO)\s+([\w.\"]+)", sql)
    return verb, match.group(1).replace('"', "") if match else ""


# GET /api/users on a warm worker, exactly: the rate-limit counter (PostgreSQL, as
# REDIS_URL is unset in tests) and the page of users. The token and its user come from
# the worker's memory (accounts.tokens).
PINNED_USERS_QUERIES = [
    ("INSERT", "public.tenants_ratelimitcounter"),
    ("SELECT", "accounts_tenantuser"),
]


def test_warm_request_sends_only_the_views_own_queries(warm_cache, keys):
    client = JsonClient(token=keys.alice, tenant="acme")
    with CaptureQueriesContext(connection) as cold:
        assert client.get("/api/me").status_code == 200
    cold_sql = sql_of(cold)
    assert any("tenants_tenant" in sql for sql in cold_sql)
    with CaptureQueriesContext(connection) as warm:
        response = client.get("/api/users")
    assert response.status_code == 200
    assert response.json()["tenant"] == "acme"
    warm_sql = sql_of(warm)
    # The view's own queries only: no registry read, no SET search_path.
    assert [table_of(sql) for sql in warm_sql] == PINNED_USERS_QUERIES, warm_sql


def test_a_warm_request_sends_only_the_views_own_statements_on_the_wire(warm_cache, keys, tmp_path):
    """What reaches the server, read from libpq's protocol trace: no health check, no SET.

    Through Django's WSGI handler, whose request signals run the per-request connection
    handling, as under gunicorn.
    """
    import psycopg

    headers = {"HTTP_AUTHORIZATION": f"Token {keys.alice}", "HTTP_X_TENANT_ID": "acme", "HTTP_HOST": "localhost"}
    for _ in range(2):
        assert wsgi_request("/api/users", **headers)[0] == 200
    trace = tmp_path / "trace.txt"
    pgconn = connection.connection.pgconn
    with trace.open("w") as out:
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            status, _ = wsgi_request("/api/users", **headers)
        finally:
            pgconn.untrace()
    assert status == 200
    # Messages "F <length> Query "<sql>"" (a statement may span lines): what the client sent; with
    # client-side binding every statement is a simple query.
    messages = [m.split("\t", 3) for m in re.split(r"\n(?=[FB]\t)", trace.read_text())]
    sent = [m[3].strip().strip('"').strip() for m in messages if len(m) == 4 and m[0] == "F" and m[2] == "Query"]
    assert [table_of(sql) for sql in sent] == PINNED_USERS_QUERIES, sent


def test_switching_tenants_costs_one_set_only_when_the_schema_changes(warm_cache, keys):
    acme = JsonClient(token=keys.alice, tenant="acme")
    globex = JsonClient(token=keys.charlie, tenant="globex")
    acme.get("/api/me")
    globex.get("/api/me")
    with CaptureQueriesContext(connection) as switch:
        assert acme.get("/api/me").status_code == 200
    assert [sql for sql in sql_of(switch) if sql.startswith("SET search_path")] == ['SET search_path = "acme","public"']
    with CaptureQueriesContext(connection) as same:
        assert acme.get("/api/me").status_code == 200
    assert not [sql for sql in sql_of(same) if sql.startswith("SET")]


def test_subdomain_resolution_is_cached_too(warm_cache, keys):
    client = JsonClient(host="acme.localhost", token=keys.alice)
    assert client.get("/api/me").status_code == 200
    with CaptureQueriesContext(connection) as warm:
        assert client.get("/api/me").status_code == 200
    assert not [sql for sql in sql_of(warm) if "tenants_domain" in sql or "tenants_tenant" in sql]


def test_a_rolled_back_search_path_is_set_again(warm_cache, keys):
    """PostgreSQL undoes a SET with the transaction that issued it; the backend must not trust its memo."""
    client = JsonClient(token=keys.alice, tenant="acme")
    client.get("/api/me")
    connection.set_schema_to_public()
    try:
        from django.db import transaction

        with transaction.atomic():
            connection.set_schema("globex")
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            transaction.set_rollback(True)
        connection.set_schema("globex")
        with connection.cursor() as cursor:
            cursor.execute("SHOW search_path")
            assert cursor.fetchone()[0] == "globex, public"
    finally:
        connection.set_schema_to_public()


def test_changes_by_any_means_reach_the_cache(warm_cache, keys):
    """Suspension through the service, plan changes through a bare UPDATE (no signals): both seen."""
    client = JsonClient(token=keys.charlie, tenant="globex")
    assert client.get("/api/me").json()["plan"] == "starter"
    try:
        services.set_tenant_active("globex", False)
        assert client.get("/api/me").status_code == 403
        services.set_tenant_active("globex", True)
        assert client.get("/api/me").status_code == 200
        Tenant.objects.filter(pk="globex").update(plan=Plan.objects.get(pk="enterprise"))
        # No signal fired: only the database's notification can tell the cache.
        for _ in range(200):
            body = client.get("/api/me").json()
            if body["plan"] == "enterprise":
                break
            registry_cache.wait_until_ready()
            import time

            time.sleep(0.01)
        assert body["plan"] == "enterprise"
        assert body["settings"]["max_users"] == 100
    finally:
        Tenant.objects.filter(pk="globex").update(plan=Plan.objects.get(pk="starter"), active=True)


@pytest.mark.django_db
def test_nothing_is_cached_from_inside_a_transaction(keys):
    """A test transaction, like any other: what it reads may be rolled back, so it is never cached."""
    assert registry_cache.wait_until_ready()
    registry_cache.invalidate()
    connection.set_schema_to_public()
    services.provision_tenant(tenant_id="ghost", name="Ghost")
    client = JsonClient(tenant="ghost")
    assert client.get("/api/me").status_code == 401  # resolved (uncommitted), then refused: no token
    assert registry_cache.get_tenant("ghost") is None


def test_cached_tenants_of_one_plan_share_one_copy_of_it(warm_cache):
    first = Tenant.objects.select_related("plan").get(pk="acme")
    second = Tenant.objects.select_related("plan").get(pk="acme")
    assert first.plan is not second.plan
    generation = registry_cache.generation()
    registry_cache.put(generation, "one", first)
    registry_cache.put(generation, "two", second)
    assert registry_cache.get_tenant("one").plan is registry_cache.get_tenant("two").plan
    registry_cache.invalidate()  # a plan changed: the next rows bring their own copy
    registry_cache.put(registry_cache.generation(), "two", Tenant.objects.select_related("plan").get(pk="acme"))
    assert registry_cache.get_tenant("two").plan is not first.plan
    registry_cache.invalidate()


def test_each_reader_gets_a_copy_of_the_cached_tenant_of_its_own(warm_cache):
    """What one request does to its tenant object reaches neither the cache nor another request."""
    assert get_tenant("acme") is not None  # cached now
    first, second = get_tenant("acme"), get_tenant("acme")
    assert first is not second and first == second
    assert first.plan is second.plan  # the plan is shared, as with copy.copy: it is read, never changed
    first.name = "Changed"
    first._state.fields_cache.pop("plan")
    first._state.adding = True
    third = get_tenant("acme")
    assert third.name == second.name != "Changed"
    assert third._state.fields_cache["plan"] is second.plan and not third._state.adding
    assert third._state.db == second._state.db == "default"
    with CaptureQueriesContext(connection) as queries:
        assert third.plan.pk == second.plan_id  # from the copied cache of related objects: no query
    assert not queries.captured_queries


def test_a_host_is_parsed_once_per_worker_validated_first_and_forgotten_when_the_settings_change(monkeypatch):
    from django.core.exceptions import DisallowedHost
    from django.http import HttpRequest
    from django.test import RequestFactory, override_settings

    from core import hosts

    parsed: list[str] = []
    get_host = HttpRequest.get_host
    monkeypatch.setattr(HttpRequest, "get_host", lambda request: parsed.append("x") or get_host(request))
    hosts._host_names.clear()

    def name_of(host: str, **extra: str) -> str:
        return hosts.host_name(RequestFactory().get("/api/users", HTTP_HOST=host, **extra))

    with override_settings(ALLOWED_HOSTS=[".localhost", "[::1]"]):
        assert name_of("Acme.Localhost:8000") == "acme.localhost"
        assert name_of("Acme.Localhost:8000") == "acme.localhost"
        assert name_of("[::1]:8000") == "[::1]"
        assert len(parsed) == 2  # once per distinct Host header
        with pytest.raises(DisallowedHost):
            name_of("evil.example")
        with pytest.raises(DisallowedHost):  # a refused host is not kept: refused again
            name_of("evil.example")
        # With proxies trusted, X-Forwarded-Host names the host: part of what is remembered.
        with override_settings(USE_X_FORWARDED_HOST=True):
            assert name_of("acme.localhost", HTTP_X_FORWARDED_HOST="globex.localhost") == "globex.localhost"
    with override_settings(ALLOWED_HOSTS=["globex.localhost"]), pytest.raises(DisallowedHost):
        name_of("Acme.Localhost:8000")  # allowed before, not any more: checked again


def test_the_host_names_kept_are_bounded(monkeypatch):
    from django.test import RequestFactory, override_settings

    from core import hosts

    monkeypatch.setattr(hosts, "HOST_NAMES_MAX", 3)
    hosts._host_names.clear()
    with override_settings(ALLOWED_HOSTS=[".localhost"]):
        for number in range(10):
            host = f"t{number}.localhost"
            assert hosts.host_name(RequestFactory().get("/", HTTP_HOST=host)) == host
            assert len(hosts._host_names) <= 3


@pytest.mark.parametrize(
    ("path", "platform", "tenant_route"),
    [
        ("/admin", True, False),
        ("/admin/tenants", True, False),
        ("/administrator", False, False),
        ("/django-admin/", True, False),
        ("/api", False, True),
        ("/api/users", False, True),
        ("/apiary", False, False),
        ("/api/schema", False, False),
        ("/api/schema/", False, False),
        ("/api/docs/x", False, False),
        ("/api/schemas", False, True),
        ("/", False, False),
    ],
)
def test_route_families_are_whole_path_segments(path, platform, tenant_route):
    from tenants.middleware import is_platform_path, needs_tenant

    assert is_platform_path(path) is platform
    assert needs_tenant(path) is tenant_route
