"""The Django admin for operators, the demo data command, CORS."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from accounts.models import TenantUser
from tenants.models import Tenant
from tests.conftest import JsonClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    client = JsonClient()
    connection.set_schema_to_public()  # signing in outside a request: an earlier request may have left a tenant's
    assert client.login(username="admin", password="demo-pass-2024")
    return client


def test_admin_lists_tenants_with_plan_state_users_and_domain(operator):
    response = operator.get("/django-admin/tenants/tenant/")
    assert response.status_code == 200
    page = response.content.decode()
    for expected in ("acme", "globex", "enterprise", "starter", "acme.localhost", "globex.localhost"):
        assert expected in page
    assert '<td class="field-user_count">2</td>' in page
    assert '<td class="field-user_count">1</td>' in page


def test_admin_filters_and_search(operator):
    page = operator.get("/django-admin/tenants/tenant/?plan__id__exact=starter").content.decode()
    assert "globex" in page and "Acme Corporation" not in page
    page = operator.get("/django-admin/tenants/tenant/?q=acme").content.decode()
    assert "Acme Corporation" in page and "Globex Inc." not in page


@pytest.mark.parametrize(("action", "active"), [("suspend", False), ("activate", True)])
def test_admin_actions_suspend_and_activate(operator, action, active):
    if active:
        Tenant.objects.filter(pk="globex").update(active=False)
    response = operator.post(
        "/django-admin/tenants/tenant/",
        {"action": action, "_selected_action": ["globex"], "confirm": "yes"},
        content_type="multipart/form-data",
        follow=True,
    )
    assert response.status_code == 200
    assert Tenant.objects.get(pk="globex").active is active
    assert ("Reactivated" if active else "Suspended") + " 1 tenant(s): globex" in response.content.decode()


def test_suspend_asks_for_confirmation_first(operator):
    response = operator.post(
        "/django-admin/tenants/tenant/",
        {"action": "suspend", "_selected_action": ["globex", "acme"]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Suspend these tenants?" in page
    assert "<strong>acme</strong>: Acme Corporation" in page and "<strong>globex</strong>: Globex Inc." in page
    assert 'name="confirm" value="yes"' in page
    assert Tenant.objects.filter(active=False).count() == 0
    response = operator.post(
        "/django-admin/tenants/tenant/",
        {"action": "suspend", "_selected_action": ["globex"], "confirm": "yes"},
        content_type="multipart/form-data",
        follow=True,
    )
    assert (
        "Suspended 1 tenant(s): globex; their users can no longer sign in or use the API." in response.content.decode()
    )
    assert list(Tenant.objects.filter(active=False).values_list("id", flat=True)) == ["globex"]


def test_tenant_detail_shows_domains_users_and_limits_in_force(operator):
    Tenant.objects.filter(pk="globex").update(max_users_override=25)
    page = operator.get("/django-admin/tenants/tenant/globex/change/").content.decode()
    assert "globex.localhost" in page
    assert '<div class="readonly">25</div>' in page  # the override wins over the plan's 10
    assert '<div class="readonly">api</div>' in page
    assert '<div class="readonly">60</div>' in page  # starter's rate limit
    assert "Limits in force" in page
    page = operator.get("/django-admin/tenants/tenant/acme/change/").content.decode()
    assert '<div class="readonly">analytics, api, export</div>' in page
    assert '<div class="readonly">2</div>' in page  # users


def test_admin_is_refused_to_anonymous_and_absent_on_tenant_host():
    response = JsonClient().get("/django-admin/tenants/tenant/")
    assert response.status_code == 302
    assert JsonClient(host="acme.localhost").get("/django-admin/").status_code == 404


def test_seed_demo_is_idempotent_and_exact():
    for _ in range(2):
        call_command("seed_demo", stdout=io.StringIO())
    assert list(Tenant.objects.order_by("id").values_list("id", "name", "plan_id", "active")) == [
        ("acme", "Acme Corporation", "enterprise", True),
        ("globex", "Globex Inc.", "starter", True),
    ]
    assert [int(t.created_at.timestamp()) for t in Tenant.objects.order_by("id")] == [1700000000, 1700100000]
    with schema_context("acme"):
        assert list(TenantUser.objects.values_list("id", "username", "name", "role")) == [
            (1, "alice", "Alice", "admin"),
            (2, "bob", "Bob", "member"),
        ]
    with schema_context("globex"):
        assert list(TenantUser.objects.values_list("id", "username", "name", "role")) == [
            (1, "charlie", "Charlie", "admin"),
        ]


def test_seed_demo_prints_logins_and_working_tokens(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "another-secret-9")
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    text = out.getvalue()
    assert "another-secret-9" in text
    assert "http://acme.localhost:8000/" in text
    tokens = {line.split()[0]: line.split()[-1] for line in text.splitlines() if "API token" in line}
    assert JsonClient(tenant="acme", token=tokens["alice"]).get("/api/me").status_code == 200
    assert JsonClient(tenant="globex", token=tokens["charlie"]).get("/api/me").status_code == 200
    # The platform admin's line reads "staff API token: <key>".
    assert JsonClient(token=tokens["staff"]).get("/admin/tenants").status_code == 200
    client = JsonClient()
    assert client.login(username="alice", password="another-secret-9") is False  # staff login is public-only
    assert client.post("/admin/auth/token", {"username": "admin", "password": "another-secret-9"}).status_code == 200


@override_settings(CORS_ALLOWED_ORIGINS=["http://app.example.com"])
def test_cors_preflight_allows_configured_origin_and_tenant_header():
    response = JsonClient().options(
        "/api/me",
        HTTP_ORIGIN="http://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-tenant-id, authorization",
    )
    assert response["Access-Control-Allow-Origin"] == "http://app.example.com"
    assert "x-tenant-id" in response["Access-Control-Allow-Headers"]


@override_settings(CORS_ALLOWED_ORIGINS=["http://app.example.com"])
def test_cors_refuses_other_origins():
    response = JsonClient(tenant="acme").get("/api/me", HTTP_ORIGIN="http://evil.example.com")
    assert "Access-Control-Allow-Origin" not in response
