"""Through a real PgBouncer in transaction mode, two server connections for everyone (issue 11).

Two gunicorn workers of four threads each serve 50 tenants that sixteen client threads
reach in random order with reads and writes. With ``DATABASE_POOL_MODE=transaction`` not
one answer may hold another tenant's data and not one write may land in another tenant's
schema; the same traffic in direct mode must leak, which shows that the check can fail.
Provisioning, the schema pool, ``migrate_tenants`` and suspension go through the pooler
too. PgBouncer itself comes from the ``pgbouncer`` fixture (config/pgbouncer.py).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django_tenants.utils import schema_context

from accounts.models import AuthToken, TenantUser
from tenants import services
from tenants.db.base import DatabaseWrapper
from tenants.models import Tenant
from tenants.provisioning import fill_pool, pool_schemas
from tests.catalog import describe
from tests.conftest import database_url, free_port
from tests.test_pool_and_migrations import unapply_accounts

TENANTS = 50
REQUESTS = 2400
CLIENT_THREADS = 16

POOLER_ON_CITUS = (
    "transaction mode sends the search path and the statement in one message, which the coordinator "
    "cannot forward to a worker (cannot insert multiple commands into a prepared statement); open"
)


@dataclass(frozen=True)
class Workspace:
    id: str
    token: str
    admin_id: str


@dataclass
class Traffic:
    answers: int = 0
    wrong: list[str] = field(default_factory=list)
    writes: list[tuple[str, str, str]] = field(default_factory=list)  # tenant, user id, username
    lock: threading.Lock = field(default_factory=threading.Lock)


def app_env(bouncer, mode: str, direct_url: str | None = None) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "LOG_LEVEL": "WARNING"}
    env.update(DATABASE_URL=bouncer.url(connection.settings_dict["NAME"]), DATABASE_POOL_MODE=mode)
    for name in ("REDIS_URL", "TENANT_POOL_REFILL", "DATABASE_DIRECT_URL", "DEBUG"):
        env.pop(name, None)
    if direct_url:
        env["DATABASE_DIRECT_URL"] = direct_url
    return env


def manage(env: dict[str, str], *args: str) -> str:
    command = [sys.executable, "manage.py", *args]
    done = subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@contextmanager
def serve(env: dict[str, str]) -> Iterator[int]:
    """gunicorn, two workers of four threads, on a free port."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", "2"]
    command += ["--worker-class", "gthread", "--threads", "4", "--keep-alive", "30", "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if Http(port).send("GET", "/api/schema")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(15)


class Http:
    """One keep-alive connection to the app."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, body: object = None, headers: dict | None = None) -> tuple[int, object]:
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", **(headers or {})}
        if payload is not None:
            all_headers["Content-Type"] = "application/json"
        for attempt in (1, 2):  # a keep-alive connection the server closed meanwhile: once more
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request(method, path, body=payload, headers=all_headers)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt == 2:
                    raise
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw[:200].decode(errors="replace")


def make_workspaces(prefix: str, create: Callable[[str], None]) -> list[Workspace]:
    """TENANTS tenants made by ``create``, each with an admin and a token, limits lifted."""
    workspaces = []
    for n in range(TENANTS):
        tenant_id = f"{prefix}-{n:02d}"
        create(tenant_id)
        connection.set_schema_to_public()
        services.update_tenant(tenant_id, {"rate_limit_per_minute": 0, "max_users": 1_000_000})
        with schema_context(tenant_id):
            admin = TenantUser.objects.create(username=f"{tenant_id}-admin", name="Admin", role="admin")
            _, token = AuthToken.issue(user=admin, name="tests")
        workspaces.append(Workspace(tenant_id, token, str(admin.pk)))
    connection.set_schema_to_public()
    return workspaces


def hammer(port: int, workspaces: list[Workspace], seed: int) -> Traffic:
    """REQUESTS requests from CLIENT_THREADS threads, each to a tenant drawn at random, each answer checked."""
    traffic = Traffic()
    per_thread = REQUESTS // CLIENT_THREADS

    def wrong(traffic: Traffic, what: str) -> None:
        with traffic.lock:
            traffic.wrong.append(what)

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        http = Http(port)
        mine: dict[str, list[tuple[str, str]]] = {}
        for n in range(per_thread):
            workspace = rng.choice(workspaces)
            tenant = workspace.id
            headers = {"Authorization": f"Token {workspace.token}", "X-Tenant-ID": tenant}
            roll = rng.random()
            if roll < 0.3:
                status, body = http.send("GET", "/api/me", headers=headers)
                ok = status == 200 and body.get("id") == tenant
            elif roll < 0.6:
                status, body = http.send("GET", "/api/users?limit=1000", headers=headers)
                ok = (
                    status == 200
                    and body.get("tenant") == tenant
                    and all(user["username"].startswith(tenant + "-") for user in body["users"])
                )
            elif roll < 0.75:
                user_id, username = rng.choice(mine.get(tenant) or [(workspace.admin_id, f"{tenant}-admin")])
                status, body = http.send("GET", f"/api/users/{user_id}", headers=headers)
                ok = status == 200 and body.get("username") == username
            else:
                username = f"{tenant}-s{seed}-t{index}-{n}"
                status, body = http.send("POST", "/api/users", {"name": username, "username": username}, headers)
                ok = status == 201 and body.get("username") == username
                if ok:
                    mine.setdefault(tenant, []).append((str(body["id"]), username))
                    with traffic.lock:
                        traffic.writes.append((tenant, str(body["id"]), username))
            with traffic.lock:
                traffic.answers += 1
            if not ok:
                wrong(traffic, f"{tenant}: {status} {str(body)[:160]}")

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(client, range(CLIENT_THREADS)))
    return traffic


def statuses(port: int, headers: dict[str, str]) -> set[int]:
    """The statuses of 24 GET /api/me, eight at a time: enough to reach both workers."""
    with ThreadPoolExecutor(8) as pool:
        return set(pool.map(lambda _: Http(port).send("GET", "/api/me", headers=headers)[0], range(24)))


def misplaced_and_lost(workspaces: list[Workspace], traffic: Traffic) -> tuple[list[str], list[str]]:
    """Read every tenant's users directly: rows of another tenant, and acknowledged writes not where they belong."""
    misplaced, lost = [], []
    rows: dict[str, dict[str, str]] = {}
    with connection.cursor() as cursor:
        for workspace in workspaces:
            cursor.execute(f'SELECT username, id::text FROM "{workspace.id}".accounts_tenantuser')
            rows[workspace.id] = dict(cursor.fetchall())
    for tenant, usernames in rows.items():
        misplaced += [f"{username} in {tenant}" for username in usernames if not username.startswith(tenant + "-")]
    for tenant, user_id, username in traffic.writes:
        if rows[tenant].get(username) != user_id:
            lost.append(f"{username} ({user_id}) of {tenant}")
    return misplaced, lost


@pytest.mark.not_on_citus(POOLER_ON_CITUS)
def test_pooled_traffic_never_crosses_tenants(committed_db, keys, pgbouncer):
    env = app_env(pgbouncer, "transaction", direct_url=database_url())
    # The schema pool, filled through the pooler.
    manage(env, "tenant_pool", "--size", str(TENANTS + 5))
    assert len(pool_schemas()) >= TENANTS + 5
    pooled_before = set(pool_schemas())
    ids = [f"pb-{n:02d}" for n in range(TENANTS)]
    committed_db.extend(ids)
    with serve(env) as port:
        staff = Http(port)
        auth = {"Authorization": f"Token {keys.admin}"}

        def provision_through_the_pooler(tenant_id: str) -> None:
            status, body = staff.send("POST", "/admin/tenants", {"id": tenant_id, "name": tenant_id}, auth)
            assert status == 201, body

        workspaces = make_workspaces("pb", provision_through_the_pooler)
        # Provisioning took its schemas from the pool.
        assert len(pooled_before - set(pool_schemas())) == TENANTS

        traffic = hammer(port, workspaces, seed=1)
        assert traffic.answers == REQUESTS // CLIENT_THREADS * CLIENT_THREADS
        assert traffic.wrong == [], f"{len(traffic.wrong)} wrong answers, e.g. {traffic.wrong[:5]}"
        misplaced, lost = misplaced_and_lost(workspaces, traffic)
        assert misplaced == [] and lost == []
        assert len(traffic.writes) > REQUESTS // 5

        # Suspension and reactivation through the pooler reach both workers within a second.
        sample = workspaces[7]
        headers = {"Authorization": f"Token {sample.token}", "X-Tenant-ID": sample.id}

        assert staff.send("PUT", f"/admin/tenants/{sample.id}/suspend", headers=auth)[0] == 200
        time.sleep(1.0)
        assert statuses(port, headers) == {403}
        assert staff.send("PUT", f"/admin/tenants/{sample.id}/activate", headers=auth)[0] == 200
        time.sleep(1.0)
        assert statuses(port, headers) == {200}


def test_the_same_traffic_leaks_without_transaction_mode(committed_db, keys, pgbouncer):
    """Direct mode keeps the search path in the session, which the pooler hands to other clients."""
    connection.set_schema_to_public()
    fill_pool(TENANTS + 5)
    ids = [f"pl-{n:02d}" for n in range(TENANTS)]
    committed_db.extend(ids)
    workspaces = make_workspaces("pl", lambda tenant_id: services.provision_tenant(tenant_id=tenant_id, name=tenant_id))
    with serve(app_env(pgbouncer, "direct", direct_url=database_url())) as port:
        traffic = hammer(port, workspaces, seed=2)
    misplaced, lost = misplaced_and_lost(workspaces, traffic)
    print(
        f"direct mode through the pooler: {len(traffic.wrong)} of {traffic.answers} answers wrong, "
        f"{len(misplaced)} users in another tenant's schema, {len(lost)} acknowledged creations not in their own"
    )
    # The checks of the pooled test, failing: answers of the wrong tenant, writes in the wrong schema.
    assert len(traffic.wrong) > REQUESTS // 10, traffic.wrong[:5]
    assert misplaced or lost


@pytest.mark.not_on_citus(POOLER_ON_CITUS)
def test_migrate_tenants_through_the_pooler(committed_db, pgbouncer, reference_schema):
    connection.set_schema_to_public()
    fill_pool(4)
    ids = ["pm-a", "pm-b", "pm-c"]
    committed_db.extend(ids)
    for tenant_id in ids:
        services.provision_tenant(tenant_id=tenant_id, name=tenant_id)
    reference = describe(reference_schema)
    for tenant_id in ids[1:]:
        unapply_accounts(tenant_id)
    assert describe("pm-b") != reference
    out = manage(app_env(pgbouncer, "transaction"), "migrate_tenants", "--pool-size", "6")
    assert "2 migrated, 0 failed" in out
    assert describe("pm-b") == reference and describe("pm-c") == reference
    assert len(pool_schemas()) >= 6


@contextmanager
def pooled_connection(pgbouncer, mode: str) -> Iterator[DatabaseWrapper]:
    """A second Django connection of this process, alias "pooled", through the pooler in ``mode``."""
    settings_dict = {
        **connection.settings_dict,
        "HOST": "127.0.0.1",
        "PORT": str(pgbouncer.port),
        "POOL_MODE": mode,
        "OPTIONS": {**connection.settings_dict["OPTIONS"]},
    }
    wrapper = DatabaseWrapper(settings_dict, alias="pooled")
    connections["pooled"] = wrapper
    try:
        yield wrapper
    finally:
        wrapper.close()
        del connections["pooled"]


def pollute_server_sessions(pgbouncer) -> None:
    """Leave a session-level search path of globex on both server connections, as a careless client would."""
    import psycopg

    clients = [psycopg.connect(pgbouncer.url(connection.settings_dict["NAME"])) for _ in range(2)]
    try:
        for client in clients:  # both transactions open at once: each pins one of the two server connections
            client.execute("SET search_path = globex")
        for client in clients:
            client.commit()
    finally:
        for client in clients:
            client.close()


def current_path(wrapper: DatabaseWrapper) -> list[str]:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT current_schemas(false)")
        return cursor.fetchone()[0]


def test_every_statement_carries_its_tenants_path(committed_db, pgbouncer):
    with pooled_connection(pgbouncer, "transaction") as pooled:
        assert pooled.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] is True
        pooled.set_schema("acme")
        pollute_server_sessions(pgbouncer)
        assert current_path(pooled) == ["acme", "public"]
        with pooled.cursor() as cursor:
            # Parameters, and executemany (which psycopg would pipeline): alice and bob are acme's, not globex's.
            cursor.execute("SELECT count(*) FROM accounts_tenantuser WHERE username = %s", ["alice"])
            assert cursor.fetchone()[0] == 1
            cursor.executemany("UPDATE accounts_tenantuser SET name = name WHERE username = %s", [["alice"], ["bob"]])
            assert cursor.rowcount == 2
        # Inside a transaction: switching tenants, and a savepoint rolled back after an error.
        with transaction.atomic(using="pooled"):
            pooled.set_schema("globex")
            assert current_path(pooled) == ["globex", "public"]
            with pytest.raises(DatabaseError), transaction.atomic(using="pooled"):
                pooled.set_schema("acme")
                with pooled.cursor() as cursor:
                    cursor.execute("SELECT 1/0")
            assert current_path(pooled) == ["acme", "public"]
        pooled.set_schema_to_public()
        pollute_server_sessions(pgbouncer)
        assert current_path(pooled) == ["public"]

    # Direct mode through the same pooler: its SET went to one server session, and it trusts it.
    with pooled_connection(pgbouncer, "direct") as careless:
        careless.set_schema("acme")
        current_path(careless)
        pollute_server_sessions(pgbouncer)
        assert current_path(careless) == ["globex"]


def test_without_a_direct_url_the_registry_is_read_through_the_pooler(committed_db, keys, pgbouncer):
    """LISTEN cannot live behind a transaction pooler: with no DATABASE_DIRECT_URL the cache stays off."""
    with serve(app_env(pgbouncer, "transaction")) as port:
        headers = {"Authorization": f"Token {keys.charlie}", "X-Tenant-ID": "globex"}

        assert statuses(port, headers) == {200}  # both workers warm
        try:
            connection.set_schema_to_public()
            Tenant.objects.filter(pk="globex").update(active=False)  # a bare UPDATE, as from psql
            time.sleep(1.0)
            assert statuses(port, headers) == {403}
        finally:
            Tenant.objects.filter(pk="globex").update(active=True)
