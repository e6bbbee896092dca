"""Production settings, password-guessing throttles, proxies, security headers."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from tests.conftest import JsonClient

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "PRODUCTION": "1",
    "SECRET_KEY": secrets.token_urlsafe(48),
    "ALLOWED_HOSTS": "saas.example.com,.saas.example.com",
    "TENANT_BASE_DOMAIN": "saas.example.com",
}


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_development_settings_do_not_pass_the_deploy_check():
    # The check is real: the development defaults (debug-free but HTTP cookies, no HSTS) fail it.
    result = manage("check", "--deploy", "--fail-level", "WARNING", env={"PRODUCTION": "0"})
    assert result.returncode != 0


@pytest.mark.parametrize("secret", ["", "short-secret"])
def test_production_refuses_a_missing_or_weak_secret(secret):
    result = manage("check", env={**PRODUCTION_ENV, "SECRET_KEY": secret})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("client_kwargs", "path", "body"),
    [
        ({}, "/admin/auth/token", {"username": "admin", "password": "guess"}),
        ({"tenant": "acme"}, "/api/auth/token", {"username": "alice", "password": "guess"}),
        ({"host": "acme.localhost"}, "/api/auth/token", {"username": "alice", "password": "guess"}),
    ],
)
def test_password_guessing_is_throttled(client_kwargs, path, body):
    client = JsonClient(**client_kwargs)
    statuses = [client.post(path, body).status_code for _ in range(10)]
    assert statuses == [401] * 10
    refused = client.post(path, {**body, "password": "demo-pass-2024"})
    assert refused.status_code == 429
    assert refused.json() == {"error": "Rate limit exceeded"}
    assert int(refused["Retry-After"]) > 0


@pytest.mark.django_db
def test_login_throttles_are_per_tenant():
    acme = JsonClient(tenant="acme")
    for _ in range(11):
        acme.post("/api/auth/token", {"username": "alice", "password": "guess"})
    response = JsonClient(tenant="globex").post(
        "/api/auth/token", {"username": "charlie", "password": "demo-pass-2024"}
    )
    assert response.status_code == 200


@pytest.mark.django_db
def test_forwarded_for_from_an_untrusted_peer_is_ignored():
    statuses = [
        JsonClient(HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        .post("/admin/auth/token", {"username": "admin", "password": "guess"})
        .status_code
        for n in range(11)
    ]
    assert statuses[-1] == 429  # rotating the header does not reset the count


@pytest.mark.django_db
@override_settings(TRUSTED_PROXIES=["127.0.0.1/32"])
def test_forwarded_for_from_a_trusted_proxy_names_the_client():
    for n in range(11):
        response = JsonClient(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, 127.0.0.1").post(
            "/admin/auth/token", {"username": "admin", "password": "guess"}
        )
        assert response.status_code == 401  # each client has its own count


@pytest.mark.django_db
def test_forwarded_proto_from_an_untrusted_peer_does_not_make_a_request_secure():
    from django.test import RequestFactory

    from core.middleware import TrustedProxyMiddleware

    seen = {}

    def view(request):
        seen["secure"] = request.is_secure()
        return None

    request = RequestFactory().get("/", HTTP_X_FORWARDED_PROTO="https", REMOTE_ADDR="203.0.113.9")
    TrustedProxyMiddleware(view)(request)
    assert seen["secure"] is False


@pytest.mark.django_db
def test_security_headers(alice):
    response = alice.get("/api/me")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
