"""Tenant resolution: subdomain, header, both, and the exact errors of SPEC 3."""

import logging

import pytest

from tests.conftest import JsonClient

pytestmark = pytest.mark.django_db


def test_header_on_public_host_reaches_the_tenant(alice):
    response = alice.get("/api/me")
    assert response.status_code == 200
    assert response.json() == {
        "id": "acme",
        "name": "Acme Corporation",
        "plan": "enterprise",
        "active": True,
        "created_at": 1700000000,
        "settings": {
            "max_users": 100,
            "features": ["analytics", "api", "export"],
            "rate_limit_per_minute": 600,
            "requests_per_month": None,
            "display_name": "Acme Corporation",
            "timezone": "UTC",
            "theme_color": "#2563eb",
        },
    }


def test_subdomain_reaches_the_tenant(keys):
    response = JsonClient(host="globex.localhost:8000", token=keys.charlie).get("/api/me")
    assert response.status_code == 200
    assert response.json()["id"] == "globex"
    settings = response.json()["settings"]
    assert (settings["max_users"], settings["features"], settings["rate_limit_per_minute"]) == (10, ["api"], 60)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "localhost:8000", "127.0.0.1:8000"])
def test_missing_tenant_on_public_host(host):
    response = JsonClient(host=host).get("/api/me")
    assert response.status_code == 400
    assert response.json() == {"error": "Missing X-Tenant-ID header"}


def test_unknown_tenant_by_header():
    response = JsonClient(tenant="nope").get("/api/me")
    assert response.status_code == 404
    assert response.json() == {"error": "Unknown tenant: nope"}


def test_unknown_tenant_by_subdomain():
    response = JsonClient(host="nope.localhost").get("/api/me")
    assert response.status_code == 404
    assert response.json() == {"error": "Unknown tenant: nope"}


@pytest.mark.parametrize("header", ["ACME", "acme;drop", "a b", "pg_x", "x" * 200, "ünïcode"])
def test_malformed_header_ids_are_unknown_tenants(header):
    response = JsonClient(tenant=header.encode().decode("latin-1")).get("/api/me")
    assert response.status_code == 404
    assert response.json()["error"].startswith("Unknown tenant: ")
    assert len(response.json()["error"]) < 150


def test_suspended_tenant_is_refused_before_authentication(staff, keys):
    assert staff.put("/admin/tenants/globex/suspend").status_code == 200
    for client in (JsonClient(tenant="globex"), JsonClient(host="globex.localhost", token=keys.charlie)):
        response = client.get("/api/me")
        assert response.status_code == 403
        assert response.json() == {"error": "Tenant account is suspended"}


def test_tenant_errors_come_before_authentication():
    # A bad token does not turn the tenant errors into 401s.
    assert JsonClient(token="bogus").get("/api/me").status_code == 400
    assert JsonClient(token="bogus", tenant="nope").get("/api/me").status_code == 404


def test_header_and_subdomain_agreeing(keys):
    response = JsonClient(host="acme.localhost", tenant="acme", token=keys.alice).get("/api/me")
    assert response.status_code == 200


def test_header_and_subdomain_disagreeing_is_400(keys):
    response = JsonClient(host="acme.localhost", tenant="globex", token=keys.alice).get("/api/me")
    assert response.status_code == 400
    assert response.json() == {"error": "X-Tenant-ID header does not match the tenant of this host"}


def test_unauthenticated_tenant_request_is_401_json():
    response = JsonClient(tenant="acme").get("/api/me")
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("path", ["/admin/tenants", "/admin/tenants/acme", "/admin/auth/token", "/django-admin/"])
def test_platform_routes_do_not_exist_on_tenant_hosts(path, keys):
    response = JsonClient(host="acme.localhost", token=keys.admin).get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "Not found"}


def test_platform_routes_ignore_the_tenant_header(keys):
    response = JsonClient(token=keys.admin, tenant="acme").get("/admin/tenants")
    assert response.status_code == 200
    assert response.json()["count"] == 2, response.json()


def test_unknown_tenant_api_path_is_json_404(alice):
    response = alice.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found"}


def test_browser_gets_a_page_for_an_unknown_workspace():
    response = JsonClient(host="nope.localhost").get("/", HTTP_ACCEPT="text/html")
    assert response.status_code == 404
    assert b"No workspace called" in response.content


def test_public_home_page():
    response = JsonClient().get("/")
    assert response.status_code == 200
    assert b"/django-admin/" in response.content


def test_disallowed_host_is_rejected():
    assert JsonClient(host="evil.example.com").get("/api/me").status_code == 400


def test_each_request_is_logged_with_tenant(alice, caplog):
    with caplog.at_level(logging.INFO, logger="saas.request"):
        alice.get("/api/me")
    line = next(r.getMessage() for r in caplog.records if r.name == "saas.request")
    method, path, status, duration, tenant = line.split()
    assert (method, path, status, tenant) == ("GET", "/api/me", "200", "tenant=acme")
    assert duration.endswith("ms") and float(duration[:-2]) >= 0
