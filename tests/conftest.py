"""Shared fixtures. Every test runs against a real PostgreSQL: the embedded one, or DATABASE_URL.

The demo tenants (acme, globex) and their users are created once per session with
``seed_demo``; each test then runs inside a transaction that is rolled back, DDL
included, so tests may create tenants freely. Tests that need real commits (threads,
several connections) use ``committed_db`` and clean up after themselves.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import get_hashers
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import TenantUser
from accounts.services import issue_token
from tenants.models import Domain, RateLimitCounter, StaffToken, Tenant

DEMO_PASSWORD = "demo-pass-2024"


@dataclass(frozen=True)
class DemoKeys:
    admin: str
    alice: str
    bob: str
    charlie: str


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker) -> Iterator[None]:
    """Create the test database whatever the tests' marks (committed tests carry none), then seed it."""
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    # Real hashing costs 0.3 s per password; the tests check behaviour, not the hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    get_hashers.cache_clear()
    with django_db_blocker.unblock():
        db_config = setup_databases(verbosity=request.config.option.verbose, interactive=False, aliases={"default"})
        assert connection.settings_dict["NAME"].startswith("test_")
        call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    yield
    from tenants.cache import registry_cache

    # The registry cache's LISTEN connection must be gone before the test database is dropped.
    registry_cache.stop()
    with django_db_blocker.unblock():
        connections.close_all()
        teardown_databases(db_config, verbosity=request.config.option.verbose)


@pytest.fixture(scope="session")
def keys(django_db_setup, django_db_blocker) -> DemoKeys:
    with django_db_blocker.unblock():
        staff = get_user_model().objects.get(username="admin")
        _, admin_key = StaffToken.issue(user=staff, name="tests")
        found = {}
        for tenant_id, usernames in (("acme", ["alice", "bob"]), ("globex", ["charlie"])):
            with schema_context(tenant_id):
                for username in usernames:
                    found[username] = issue_token(TenantUser.objects.get(username=username), "tests")
    return DemoKeys(admin=admin_key, **found)


def redis_available() -> bool:
    """A Redis on 127.0.0.1:6379, for the tests of the REDIS_URL path (optional: skipped without one)."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


class JsonClient(Client):
    """Django's test client with JSON bodies by default and a chosen Host."""

    def __init__(self, host: str = "localhost", token: str | None = None, tenant: str | None = None, **defaults):
        defaults["HTTP_HOST"] = host
        if token:
            defaults["HTTP_AUTHORIZATION"] = f"Token {token}"
        if tenant:
            defaults["HTTP_X_TENANT_ID"] = tenant
        super().__init__(**defaults)

    def _with_json(self, method: str, path: str, data=None, content_type: str = "application/json", **extra):
        if content_type == "multipart/form-data":  # an HTML form, as a browser sends it
            return getattr(super(), method)(path, data=data or {}, **extra)
        if data is not None and not isinstance(data, (str, bytes)):
            data = json.dumps(data)
        return getattr(super(), method)(path, data=data if data is not None else "", content_type=content_type, **extra)

    def post(self, path, data=None, content_type="application/json", **extra):
        return self._with_json("post", path, data, content_type, **extra)

    def put(self, path, data=None, content_type="application/json", **extra):
        return self._with_json("put", path, data, content_type, **extra)

    def patch(self, path, data=None, content_type="application/json", **extra):
        return self._with_json("patch", path, data, content_type, **extra)


@pytest.fixture
def anon(db) -> JsonClient:
    return JsonClient()


@pytest.fixture
def staff(db, keys) -> JsonClient:
    return JsonClient(token=keys.admin)


@pytest.fixture
def alice(db, keys) -> JsonClient:
    """Acme's admin, reaching acme by header on the public host."""
    return JsonClient(token=keys.alice, tenant="acme")


@pytest.fixture
def bob(db, keys) -> JsonClient:
    """Acme's member."""
    return JsonClient(token=keys.bob, tenant="acme")


@pytest.fixture
def charlie(db, keys) -> JsonClient:
    """Globex's admin."""
    return JsonClient(token=keys.charlie, tenant="globex")


def schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


def drop_tenant(tenant_id: str) -> None:
    """Remove a tenant, its domains and its schema, committed."""
    connection.set_schema_to_public()
    Domain.objects.filter(tenant_id=tenant_id).delete()
    Tenant.objects.filter(pk=tenant_id).delete()
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant_id}" CASCADE')


@pytest.fixture
def committed_db(django_db_setup, django_db_blocker, keys) -> Iterator[list[str]]:
    """Real commits, visible to other connections. Yields a list: tenant ids put in it are dropped afterwards."""
    created: list[str] = []
    assert connection.settings_dict["NAME"].startswith("test_"), "refusing to commit outside the test database"
    with django_db_blocker.unblock():
        try:
            yield created
        finally:
            for tenant_id in created:
                drop_tenant(tenant_id)
            # Committed counts (sign-in attempts, tenants' requests) must not follow the test.
            RateLimitCounter.objects.all().delete()
            connections.close_all()


@pytest.fixture(autouse=True)
def _one_counting_window(monkeypatch):
    """Rate limits and the sign-in throttle count in fixed windows: every test runs inside one window,
    never across a window's end (tests that move the clock set their own)."""
    from tenants import ratelimit

    monkeypatch.setattr(ratelimit, "now", lambda: 1_900_000_020.0)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Nothing a test put in the cache reaches the next one."""
    from django.core.cache import cache

    cache.clear()
