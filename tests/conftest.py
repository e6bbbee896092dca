"""Shared fixtures. Every test runs against a real PostgreSQL: the embedded one, or DATABASE_URL.

The demo tenants (acme, globex) and their users are created once per session with
``seed_demo``; each test then runs inside a transaction that is rolled back, DDL
included, so tests may create tenants freely. Tests that need real commits (threads,
several connections) use ``committed_db`` and clean up after themselves.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import get_hashers
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django_tenants.utils import schema_context

from accounts.models import TenantUser
from accounts.services import issue_token
from tenants import citus
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
    from tenants.metering import meter

    # The registry cache's LISTEN connection must be gone before the test database is dropped.
    registry_cache.stop()
    meter.stop()
    with django_db_blocker.unblock():
        connections.close_all()
        teardown_databases(db_config, verbosity=request.config.option.verbose)
    if Path(settings.ARCHIVE_ROOT).name.startswith("test-archives-"):
        import shutil

        shutil.rmtree(settings.ARCHIVE_ROOT, ignore_errors=True)


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


def wsgi_request(path: str, **headers: str) -> tuple[int, bytes]:
    """GET ``path`` through Django's WSGI handler with the request signals a real server sends.

    The test client skips ``close_old_connections`` at the start and end of a request; gunicorn
    does not, and the per-request connection handling (health checks, retries) lives there.
    """
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    environ = RequestFactory().get(path, **headers).environ
    status: list[str] = []
    response = WSGIHandler()(environ, lambda line, _headers, exc_info=None: status.append(line))
    try:
        body = b"".join(response)
    finally:
        response.close()
    return int(status[0].split()[0]), body


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
def reference_schema(committed_db) -> Iterator[str]:
    """A schema made the stock way: CREATE SCHEMA, then django-tenants' migrate for that schema."""
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute('DROP SCHEMA IF EXISTS "reference" CASCADE')
        cursor.execute('CREATE SCHEMA "reference"')
    call_command("migrate_schemas", tenant=True, schema_name="reference", interactive=False, verbosity=0)
    connection.set_schema_to_public()
    yield "reference"
    with connection.cursor() as cursor:
        cursor.execute('DROP SCHEMA IF EXISTS "reference" CASCADE')


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
def _known_gap_on_citus(request) -> None:
    """Skips a test marked ``not_on_citus(reason)`` when the database is a Citus coordinator."""
    marker = request.node.get_closest_marker("not_on_citus")
    if marker is None:
        return
    request.getfixturevalue("django_db_setup")
    with request.getfixturevalue("django_db_blocker").unblock():
        if citus.enabled(connection):
            pytest.skip(f"known gap on Citus: {marker.args[0]}")


@pytest.fixture
def on_citus(django_db_setup, django_db_blocker) -> None:
    """Skips the test unless the database is a Citus coordinator (REQUIRE_CITUS_TESTS=1 fails instead)."""
    with django_db_blocker.unblock():
        if not citus.enabled(connection):
            reason = "needs a Citus coordinator: run `make citus-up` and set DATABASE_URL to the URL it prints"
            if os.environ.get("REQUIRE_CITUS_TESTS"):
                pytest.fail(reason)
            pytest.skip(reason)


def citus_workers() -> list[str]:
    """The Citus workers, ``host:port``."""
    with connection.cursor() as cursor:
        return list(citus.worker_nodes(cursor))


def tenant_nodes() -> dict[str, str]:
    """The Citus worker of every registered tenant's schema."""
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        return citus.schema_nodes(cursor, Tenant.objects.values_list("schema_name", flat=True))


@pytest.fixture(autouse=True)
def _one_counting_window(monkeypatch):
    """Rate limits and the sign-in throttle count in fixed windows: every test runs inside one window,
    never across a window's end (tests that move the clock set their own)."""
    from tenants import ratelimit

    monkeypatch.setattr(ratelimit, "now", lambda: 1_900_000_020.0)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Nothing a test put in the cache reaches the next one; quotas start with none spent in the meter."""
    from django.core.cache import cache

    from tenants.metering import meter

    cache.clear()
    # No background flushes in the test process: counts reach the database when a test flushes them.
    meter.background = False
    meter.reset()


@pytest.fixture(scope="session")
def pgbouncer(django_db_setup) -> Iterator[object]:
    """Debian's PgBouncer in transaction mode, two server connections, in front of the test database.

    Skipped when the package is missing, unless REQUIRE_PGBOUNCER_TESTS=1 (CI), where that fails.
    """
    from config import pgbouncer as bouncer

    binary = bouncer.find_binary()
    if binary is None:
        message = "pgbouncer not found (apt-get install pgbouncer)"
        if os.environ.get("REQUIRE_PGBOUNCER_TESTS") == "1":
            pytest.fail(f"PgBouncer tests required (REQUIRE_PGBOUNCER_TESTS=1) but {message}")
        pytest.skip(message)
    running = bouncer.start(binary, connection.settings_dict)
    try:
        yield running
    finally:
        running.stop()


def database_url() -> str:
    """The URL of the test database, for the processes a test starts (servers, job workers)."""
    db = connection.settings_dict
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    return f"postgres://{quote(db['USER'])}{password}@{host}{port}/{quote(db['NAME'])}"


class Worker:
    """A job worker process (``manage.py procrastinate worker``) on the test database."""

    def __init__(self, log: Path, **env: str) -> None:
        from django.conf import settings

        environment = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": "tests.process_settings",
            # Quick to notice a killed worker, so that the tests need not wait long.
            "JOB_STALLED_SECONDS": "2",
            **env,
        }
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "procrastinate", "worker"],
                cwd=settings.BASE_DIR,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as the kernel's out-of-memory killer would do."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers(committed_db, tmp_path) -> Iterator[Callable[..., Worker]]:
    """Start job workers on the test database (``workers()``); all are stopped afterwards."""
    started: list[Worker] = []

    def start(**env: str) -> Worker:
        worker = Worker(tmp_path / f"worker-{len(started)}.log", **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll ``condition`` until it returns something true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn_server(url: str, access_log: Path, workers: int = 2, env: dict[str, str] | None = None) -> Iterator[int]:
    """The project served by gunicorn on a free port, on the database at ``url``; yields the port.

    With the test session's settings (tests/process_settings.py): its apps, and its password hasher;
    ``env`` adds to (or overrides) the environment the server reads its settings from.

    The access log has one line per request: the worker's pid, the status, the path.
    """
    from django.conf import settings

    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.process_settings", **(env or {})}
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", str(workers)]
    command += ["--bind", f"127.0.0.1:{port}", "--access-logfile", str(access_log)]
    command += ["--access-logformat", "%(p)s %(s)s %(U)s"]
    process = subprocess.Popen(
        command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)
