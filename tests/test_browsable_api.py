"""The DRF browsable API on a tenant host: branded with the tenant, with working log-in and log-out."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_PASSWORD, JsonClient

pytestmark = pytest.mark.django_db

HTML = "text/html"


def test_anonymous_visitor_sees_the_tenant_and_a_working_login_link():
    client = JsonClient(host="acme.localhost")
    response = client.get("/api/users", HTTP_ACCEPT=HTML)
    assert response.status_code in (401, 403)
    text = response.content.decode()
    assert "Acme Corporation" in text
    assert "href='/api-auth/login/?next=/api/users'" in text
    login = client.get("/api-auth/login/?next=/api/users")
    assert login.status_code == 200
    assert "Acme Corporation API" in login.content.decode()


def test_login_then_browse_then_logout():
    client = JsonClient(host="acme.localhost")
    response = client.post(
        "/api-auth/login/",
        {"username": "alice", "password": DEMO_PASSWORD, "next": "/api/users"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    assert response["Location"] == "/api/users"
    page = client.get("/api/users", HTTP_ACCEPT=HTML)
    assert page.status_code == 200
    text = page.content.decode()
    assert '<a class="navbar-brand" href="/" id="tenant-name">Acme Corporation</a>' in text
    assert "&quot;username&quot;: &quot;bob&quot;" in text
    assert 'action="/api-auth/logout/?next=/api/users"' in text
    # JSON clients of the same session are served too.
    assert client.get("/api/me").json()["id"] == "acme"
    response = client.post("/api-auth/logout/?next=/api/users", content_type="multipart/form-data")
    assert response.status_code == 302
    assert client.get("/api/users", HTTP_ACCEPT=HTML).status_code in (401, 403)


def test_login_of_another_tenant_fails_on_this_host():
    response = JsonClient(host="acme.localhost").post(
        "/api-auth/login/",
        {"username": "charlie", "password": DEMO_PASSWORD, "next": "/api/users"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


def test_platform_api_is_branded_for_the_platform(keys):
    response = JsonClient(token=keys.admin).get("/admin/tenants", HTTP_ACCEPT=HTML)
    assert response.status_code == 200
    text = response.content.decode()
    assert "Platform API" in text
    assert "Acme Corporation" in text  # in the rendered JSON
