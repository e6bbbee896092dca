"""A token or session of one tenant is never valid on another, by subdomain or by header."""

import pytest
from django_tenants.utils import schema_context

from tests.conftest import JsonClient

pytestmark = pytest.mark.django_db

TENANT_ROUTES = [
    ("get", "/api/me"),
    ("get", "/api/settings"),
    ("put", "/api/settings"),
    ("get", "/api/users"),
    ("post", "/api/users"),
    ("get", "/api/users/1"),
    ("patch", "/api/users/1"),
    ("delete", "/api/users/1"),
    ("get", "/api/export"),
    ("get", "/api/analytics"),
    ("delete", "/api/auth/token"),
]
BODIES = {"put": {"display_name": "Pwned"}, "post": {"name": "Intruder"}, "patch": {"name": "Pwned"}}


def call(client, method, path):
    body = BODIES.get(method)
    return getattr(client, method)(path, body) if body else getattr(client, method)(path)


def globex_state(staff):
    detail = staff.get("/admin/tenants/globex").json()
    with schema_context("globex"):
        from accounts.models import TenantUser, WorkspaceSettings

        users = list(TenantUser.objects.values_list("id", "name", "role"))
        settings = list(WorkspaceSettings.objects.values_list("display_name"))
    return detail["user_count"], users, settings


@pytest.mark.parametrize(("method", "path"), TENANT_ROUTES)
@pytest.mark.parametrize(
    "reach",
    [
        {"tenant": "globex"},  # header on the public host
        {"host": "globex.localhost"},  # subdomain
        {"host": "globex.localhost", "tenant": "globex"},  # both
    ],
    ids=["header", "subdomain", "both"],
)
def test_acme_token_is_refused_on_globex(keys, staff, method, path, reach):
    before = globex_state(staff)
    response = call(JsonClient(token=keys.alice, **reach), method, path)
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid token"}
    assert globex_state(staff) == before


@pytest.mark.parametrize(("method", "path"), TENANT_ROUTES)
def test_acme_token_on_acme_host_with_globex_header_is_refused(keys, method, path):
    response = call(JsonClient(host="acme.localhost", tenant="globex", token=keys.alice), method, path)
    assert response.status_code == 400


@pytest.mark.parametrize(("method", "path"), TENANT_ROUTES)
def test_platform_staff_token_is_not_a_tenant_credential(keys, method, path):
    for client in (JsonClient(token=keys.admin, tenant="acme"), JsonClient(token=keys.admin, host="acme.localhost")):
        assert call(client, method, path).status_code == 401


def _session_client(host: str, tenant_header: str | None = None) -> JsonClient:
    """A client signed in as alice in acme's schema (the session row lives there)."""
    client = JsonClient(host=host, tenant=tenant_header)
    with schema_context("acme"):
        assert client.login(username="alice", password="demo-pass-2024")
    return client


def test_session_works_on_its_own_tenant():
    assert _session_client("acme.localhost").get("/api/me").status_code == 200
    assert _session_client("localhost", "acme").get("/api/users").status_code == 200


@pytest.mark.parametrize(("method", "path"), TENANT_ROUTES)
def test_acme_session_cookie_is_refused_on_globex(staff, method, path):
    before = globex_state(staff)
    acme_session = _session_client("acme.localhost")
    for reach in ({"host": "globex.localhost"}, {"tenant": "globex"}):
        intruder = JsonClient(**reach)
        intruder.cookies = acme_session.cookies
        response = call(intruder, method, path)
        assert response.status_code in (401, 403), (reach, response.content)
    assert globex_state(staff) == before


def test_acme_session_is_not_platform_staff():
    acme_session = _session_client("acme.localhost")
    platform = JsonClient()
    platform.cookies = acme_session.cookies
    assert platform.get("/admin/tenants").status_code == 401


def test_platform_session_is_not_a_tenant_session():
    platform = JsonClient()
    assert platform.login(username="admin", password="demo-pass-2024")
    tenant = JsonClient(tenant="acme")
    tenant.cookies = platform.cookies
    assert tenant.get("/api/me").status_code == 401


def test_session_writes_need_csrf():
    client = JsonClient(host="acme.localhost", enforce_csrf_checks=True)
    with schema_context("acme"):
        client.login(username="alice", password="demo-pass-2024")
    response = client.post("/api/users", {"name": "Sneaky"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


def test_tenant_user_cannot_use_staff_login():
    response = JsonClient().post("/admin/auth/token", {"username": "alice", "password": "demo-pass-2024"})
    assert response.status_code == 401


def test_cache_keys_are_tenant_aware():
    from django.core.cache import cache

    with schema_context("acme"):
        cache.set("greeting", "hello acme")
    with schema_context("globex"):
        assert cache.get("greeting") is None
        cache.set("greeting", "hello globex")
    with schema_context("acme"):
        assert cache.get("greeting") == "hello acme"
