"""Two app servers on one database: the app tier keeps no state of its own (SPEC 9, issue 10).

Starts two gunicorn servers (two workers each) on different ports against the test
database, as two machines behind a load balancer would run, and checks that what one
server knows the other applies: the sign-in throttle, a tenant's rate limit, its plan's
user limit, suspension and reactivation, and the revocation of credentials, each within
a second. Every test runs twice: with counters in PostgreSQL, and with REDIS_URL set
when a Redis answers on 127.0.0.1:6379.

Requests alternate between the servers, so that neither can have answered alone. Tenants,
usernames and client addresses are new on every run (the servers trust 127.0.0.1 as a
proxy and read the client address from X-Forwarded-For), so counts kept in a shared
Redis by earlier runs never meet these.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from accounts import services as account_services
from accounts.models import TenantUser
from tenants import services
from tests.conftest import database_url, gunicorn_server, redis_available, wait_for

PROPAGATION_SECONDS = 1.0
REDIS_URL = "redis://127.0.0.1:6379/14"
ADMIN_PASSWORD = "duo-admin-password"


@dataclass
class Answer:
    status: int
    body: dict


@dataclass
class AppServers:
    ports: tuple[int, int]
    client_address: str  # this test's own, so that sign-in counts of other runs never mix in

    def call(self, server: int, method: str, path: str, headers: dict[str, str], body: dict | None = None) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        headers = {"X-Forwarded-For": self.client_address, "Content-Type": "application/json", **headers}
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports[server]}{path}", data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        return Answer(status, json.loads(raw) if raw else {})

    def alternating(self, count: int, method: str, path: str, headers: dict[str, str], body=None) -> list[Answer]:
        """``count`` requests one after the other, to server 0, then 1, then 0..."""
        return [self.call(i % 2, method, path, headers, body) for i in range(count)]

    def on_both(self, method: str, path: str, headers: dict[str, str], per_server: int = 4) -> list[Answer]:
        """``per_server`` requests to each server, two at a time on each, so that each server's two workers answer."""
        with ThreadPoolExecutor(4) as pool:
            calls = [pool.submit(self.call, i % 2, method, path, headers) for i in range(2 * per_server)]
            return [call.result() for call in calls]


@contextlib.contextmanager
def two_app_servers(tmp_path: Path, extra_env: dict[str, str]) -> Iterator[tuple[int, int]]:
    env = {"TRUSTED_PROXIES": "127.0.0.1/32", **extra_env}
    with (
        gunicorn_server(database_url(), tmp_path / "first.log", env=env) as first,
        gunicorn_server(database_url(), tmp_path / "second.log", env=env) as second,
    ):
        yield first, second


@pytest.fixture(scope="module", params=["database", "redis"])
def server_pair(request, tmp_path_factory, django_db_setup) -> Iterator[tuple[int, int]]:
    """Two servers for the module's tests, with counters in PostgreSQL, then in Redis."""
    if request.param == "redis":
        if not redis_available():
            pytest.skip("no Redis on 127.0.0.1:6379 (the REDIS_URL path is optional)")
        extra_env = {"REDIS_URL": REDIS_URL}
    else:
        extra_env = {"REDIS_URL": ""}
    with two_app_servers(tmp_path_factory.mktemp(request.param), extra_env) as ports:
        yield ports


@pytest.fixture
def servers(server_pair: tuple[int, int], committed_db) -> AppServers:
    connection.set_schema_to_public()  # whatever the previous test's requests left selected
    return AppServers(server_pair, f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}")


def new_tenant(committed_db: list[str], **limits: object) -> tuple[str, dict[str, str]]:
    """A tenant of its own for this run, with an admin; its id and the admin's credentials by header."""
    tenant_id = f"duo{uuid.uuid4().hex[:10]}"
    committed_db.append(tenant_id)
    tenant = services.provision_tenant(tenant_id=tenant_id, name="Duo")
    if limits:
        tenant = services.update_tenant(tenant_id, limits)
    with schema_context(tenant_id):
        admin = account_services.create_user(tenant, username="ada", name="Ada", role="admin", password=ADMIN_PASSWORD)
        token = account_services.issue_token(admin)
    return tenant_id, {"X-Tenant-ID": tenant_id, "Authorization": f"Token {token}"}


def in_this_minute(seconds_needed: float = 20) -> None:
    """Wait for a fresh one-minute window if this one ends within ``seconds_needed``: counts are per window."""
    if time.time() % 60 > 60 - seconds_needed:
        time.sleep(61 - time.time() % 60)


def test_the_sign_in_throttle_counts_on_both_servers(servers):
    """Ten wrong passwords, five on each server: the eleventh attempt is refused by either."""
    in_this_minute()
    guess = {"username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "wrong-guess"}
    answers = servers.alternating(10, "POST", "/admin/auth/token", {}, guess)
    assert [answer.status for answer in answers] == [401] * 10
    assert servers.call(0, "POST", "/admin/auth/token", {}, guess).status == 429
    refused = servers.call(1, "POST", "/admin/auth/token", {}, guess)
    assert refused.status == 429
    assert refused.body["error"].startswith("Too many sign-in attempts")


def test_a_tenants_rate_limit_counts_on_both_servers(servers, committed_db):
    in_this_minute()
    _, admin = new_tenant(committed_db, rate_limit_per_minute=6)
    answers = servers.alternating(10, "GET", "/api/me", admin)
    assert [answer.status for answer in answers] == [200] * 6 + [429] * 4
    assert {answer.body["error"] for answer in answers[6:]} == {"Rate limit exceeded"}


def test_the_plan_user_limit_holds_when_both_servers_create_at_once(servers, committed_db):
    tenant_id, admin = new_tenant(committed_db, max_users=4, rate_limit_per_minute=0)

    def create(number: int) -> Answer:
        body = {"name": f"User {number}", "username": f"user{number}"}
        return servers.call(number % 2, "POST", "/api/users", admin, body)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(create, range(12)))
    assert sorted(answer.status for answer in answers) == [201] * 3 + [403] * 9
    assert {answer.body["error"] for answer in answers if answer.status == 403} == {
        "User limit reached (4 users on starter plan)"
    }
    with schema_context(tenant_id):
        assert TenantUser.objects.count() == 4


def answered_by_both(servers: AppServers, headers: dict[str, str], status: int, what: str) -> None:
    """Every worker of both servers answers ``GET /api/me`` with ``status`` within PROPAGATION_SECONDS.

    The workers learn of a change from NOTIFY, which PostgreSQL delivers once the transaction
    has committed: a request sent the very moment the change's answer arrives can still meet a
    worker whose listener has not read it yet (seen on a Citus coordinator).
    """
    wait_for(
        lambda: {answer.status for answer in servers.on_both("GET", "/api/me", headers)} == {status},
        PROPAGATION_SECONDS,
        what,
    )


def test_suspension_and_reactivation_reach_both_servers_within_a_second(servers, committed_db):
    tenant_id, admin = new_tenant(committed_db, rate_limit_per_minute=0)
    assert {answer.status for answer in servers.on_both("GET", "/api/me", admin)} == {200}

    services.set_tenant_active(tenant_id, False)
    answered_by_both(servers, admin, 403, "the suspension on both servers")

    services.set_tenant_active(tenant_id, True)
    answered_by_both(servers, admin, 200, "the reactivation on both servers")


def test_a_revoked_api_key_is_refused_by_both_servers_within_a_second(servers, committed_db):
    _, admin = new_tenant(committed_db, rate_limit_per_minute=0)
    created = servers.call(0, "POST", "/api/keys", admin, {"name": "sync", "scopes": ["read"]})
    assert created.status == 201
    by_key = {"Authorization": f"Bearer {created.body['key']}"}  # the key alone names its tenant
    # Both servers' workers check the key once and keep it in memory.
    assert {answer.status for answer in servers.on_both("GET", "/api/me", by_key)} == {200}

    assert servers.call(1, "DELETE", f"/api/keys/{created.body['id']}", admin).status == 204
    answered_by_both(servers, by_key, 401, "the revoked key refused by both servers")


def test_signing_out_on_one_server_ends_the_token_on_the_other(servers, committed_db):
    tenant_id, _ = new_tenant(committed_db, rate_limit_per_minute=0)
    credentials = {"username": "ada", "password": ADMIN_PASSWORD}
    signed_in = servers.call(0, "POST", "/api/auth/token", {"X-Tenant-ID": tenant_id}, credentials)
    assert signed_in.status == 200, signed_in.body
    session = {"X-Tenant-ID": tenant_id, "Authorization": f"Token {signed_in.body['token']}"}
    assert {answer.status for answer in servers.on_both("GET", "/api/me", session)} == {200}

    assert servers.call(1, "DELETE", "/api/auth/token", session).status == 204
    answered_by_both(servers, session, 401, "the signed-out token refused by both servers")


def test_removing_a_user_on_one_server_ends_their_access_on_the_other(servers, committed_db):
    tenant_id, admin = new_tenant(committed_db, rate_limit_per_minute=0)
    created = servers.call(0, "POST", "/api/users", admin, {"name": "Max", "username": "max"})
    assert created.status == 201, created.body
    with schema_context(tenant_id):
        member = account_services.issue_token(TenantUser.objects.get(username="max"))
    as_member = {"X-Tenant-ID": tenant_id, "Authorization": f"Token {member}"}
    assert {answer.status for answer in servers.on_both("GET", "/api/me", as_member)} == {200}

    assert servers.call(1, "DELETE", f"/api/users/{created.body['id']}", admin).status == 204
    answered_by_both(servers, as_member, 401, "the removed user's token refused by both servers")
