"""Suspension, reactivation and plan changes reach every worker process within a second.

Starts gunicorn with two worker processes against the test database, warms both
workers' registry caches, changes the tenant, and after one second expects every
answer, from both workers, to reflect the change. The worker that served a request
is read from gunicorn's access log (its pid). Counts shared by processes (the sign-in
throttle, rate limits) are checked across two servers in test_two_app_servers.py.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from accounts import services as account_services
from tenants import services
from tenants.models import Domain, Plan, Tenant
from tests.conftest import database_url, gunicorn_server

PROPAGATION_SECONDS = 1.0


@contextlib.contextmanager
def serving(tmp_path: Path, log_name: str = "access.log") -> Iterator[tuple[int, Path]]:
    """gunicorn with two workers on a free port, its access log in ``tmp_path``; stopped at the end."""
    log = tmp_path / log_name
    with gunicorn_server(database_url(), log) as port:
        yield port, log


@pytest.fixture
def server(tmp_path: Path):
    with serving(tmp_path) as running:
        yield running


def get(port: int, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/me", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def by_header(token: str, tenant: str = "relay") -> dict[str, str]:
    return {"X-Tenant-ID": tenant, "Authorization": f"Token {token}"}


def answers_from_both_workers(port: int, token_or_headers: str | dict, log: Path) -> list[tuple[int, dict]]:
    """Requests, four at a time, until each of the two workers has answered at least three."""
    headers = by_header(token_or_headers) if isinstance(token_or_headers, str) else token_or_headers
    answers: list[tuple[int, dict]] = []
    offset = log.stat().st_size if log.exists() else 0
    with ThreadPoolExecutor(4) as pool:
        for _ in range(50):
            answers += list(pool.map(lambda _: get(port, headers), range(4)))
            time.sleep(0.02)  # let the access log reach the file
            pids = [line.split()[0] for line in log.read_text()[offset:].splitlines() if "/api/me" in line]
            if len(set(pids)) >= 2 and min(pids.count(pid) for pid in set(pids)) >= 3:
                return answers
    raise AssertionError("the requests never reached both workers")


def test_changes_reach_both_workers_within_a_second(committed_db, server):
    port, log = server
    committed_db.append("relay")
    connection.set_schema_to_public()  # whatever the previous test's requests left selected
    tenant = services.provision_tenant(tenant_id="relay", name="Relay")
    with schema_context("relay"):
        token = account_services.issue_token(
            account_services.create_user(tenant, username="ray", name="Ray", role="admin")
        )

    assert {status for status, _ in answers_from_both_workers(port, token, log)} == {200}

    services.set_tenant_active("relay", False)
    time.sleep(PROPAGATION_SECONDS)
    assert {status for status, _ in answers_from_both_workers(port, token, log)} == {403}

    services.set_tenant_active("relay", True)
    time.sleep(PROPAGATION_SECONDS)
    answers = answers_from_both_workers(port, token, log)
    assert {status for status, _ in answers} == {200}
    assert {body["plan"] for _, body in answers} == {"starter"}

    # A bare UPDATE, as from psql: no Django signal, only the database's notification.
    Tenant.objects.filter(pk="relay").update(plan=Plan.objects.get(pk="enterprise"))
    time.sleep(PROPAGATION_SECONDS)
    answers = answers_from_both_workers(port, token, log)
    assert {(body["plan"], body["settings"]["max_users"]) for _, body in answers} == {("enterprise", 100)}


def test_a_deleted_tenant_is_unknown_to_every_credential_and_host_within_a_second(committed_db, server):
    port, log = server
    committed_db.append("vanish")
    connection.set_schema_to_public()
    tenant = services.provision_tenant(tenant_id="vanish", name="Vanish")
    services.update_tenant("vanish", {"rate_limit_per_minute": 0})  # many requests follow: no rate limit
    Domain.objects.create(domain="vanish-alias.localhost", tenant=tenant, is_primary=False)
    with schema_context("vanish"):
        user = account_services.create_user(tenant, username="val", name="Val", role="admin", password="pass-for-val")
        token = account_services.issue_token(user)
    # A browser session, from the tenant's own sign-in page.
    browser = Client(HTTP_HOST="vanish.localhost")
    assert browser.post("/login", {"username": "val", "password": "pass-for-val"}).status_code == 302
    session = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    credentials = {
        "token by header": by_header(token, "vanish"),
        "token on the subdomain": {"Host": "vanish.localhost", "Authorization": f"Token {token}"},
        "token on the other domain": {"Host": "vanish-alias.localhost", "Authorization": f"Token {token}"},
        "session on the subdomain": {"Host": "vanish.localhost", "Cookie": session},
    }
    for how, headers in credentials.items():
        assert {status for status, _ in answers_from_both_workers(port, headers, log)} == {200}, how

    services.delete_tenant("vanish")
    time.sleep(PROPAGATION_SECONDS)
    for how, headers in credentials.items():
        answers = answers_from_both_workers(port, headers, log)
        assert {status for status, _ in answers} == {404}, how
        assert {body["error"] for _, body in answers} <= {"Unknown tenant: vanish", "Unknown tenant: vanish-alias"}

    services.restore_tenant("vanish")
    time.sleep(PROPAGATION_SECONDS)
    for how, headers in credentials.items():
        answers = answers_from_both_workers(port, headers, log)
        assert {status for status, _ in answers} == {200}, how
        assert {body["id"] for _, body in answers} == {"vanish"}
