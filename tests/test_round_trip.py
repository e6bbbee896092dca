"""The round trip of the issue: acme with 1,000 more users and audit events, exported, imported as a new id on
the same server and as acme on a second database (another server, as far as the project can tell), every row
compared, and imported users signing in with their old passwords.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import connection
from django_tenants.utils import schema_context

from accounts.models import AuthToken, TenantUser
from accounts.services import issue_token
from core.jobs.models import Job
from core.jobs.services import run_now
from core.models import AuditEvent
from tenants import services
from tenants.archive import schema_tables
from tests.conftest import JsonClient, database_url, gunicorn_server

pytestmark = pytest.mark.django_db

MORE_USERS = 1000


@pytest.fixture
def big_acme(db) -> None:
    """acme with 1,000 more users (password hashes, tokens for some) and an audit event per user."""
    services.update_tenant("acme", {"max_users": 5000})
    with schema_context("acme"):
        users = TenantUser.objects.bulk_create(
            TenantUser(
                username=f"user{n:04}",
                name=f"User {n}",
                role="admin" if n % 50 == 0 else "member",
                email=f"user{n}@acme.example",
                password=make_password(f"password-{n}"),
            )
            for n in range(MORE_USERS)
        )
        for user in users[:20]:
            issue_token(user, "laptop")
        AuditEvent.objects.bulk_create(
            AuditEvent(actor_kind="tenant", actor="alice", action="user.create", target=f"user:{u.pk}", after={"n": i})
            for i, u in enumerate(users)
        )


def export_via_api(staff: JsonClient) -> bytes:
    job = staff.post("/admin/tenants/acme/exports").json()
    done = run_now(Job.objects.get(pk=int(job["id"])))
    assert done.status == "done", done.error
    assert done.result["rows"]["accounts_tenantuser"] == MORE_USERS + 2
    return b"".join(staff.get(f"/admin/jobs/{job['id']}/download").streaming_content)


def rows(cursor, schema: str, tables: list) -> dict[str, list]:
    found = {}
    for table in tables:
        if table.name == "django_migrations":
            continue
        order = ", ".join(f'"{column}"' for column in table.key)
        cursor.execute(f'SELECT row_to_json(t)::text FROM "{schema}"."{table.name}" t ORDER BY {order}')
        found[table.name] = [json.loads(row[0]) for row in cursor.fetchall()]
    return found


def assert_same_rows(source: dict[str, list], copy: dict[str, list], source_id: str) -> None:
    assert source.keys() == copy.keys()
    event = copy["accounts_auditevent"].pop()
    assert (event["action"], event["after"]["source"]) == ("tenant.import", source_id)
    for table in source:
        assert source[table] == copy[table], table
    assert len(source["accounts_tenantuser"]) == MORE_USERS + 2
    assert len(source["accounts_auditevent"]) > MORE_USERS
    assert len(source["accounts_authtoken"]) >= 20


def test_round_trip_on_the_same_server(staff, big_acme):
    data = export_via_api(staff)
    archive = JsonClient(token=staff.defaults["HTTP_AUTHORIZATION"].split()[1])
    response = archive.post(
        "/admin/tenants/import", {"archive": _named(data), "id": "acme-two"}, content_type="multipart/form-data"
    )
    assert response.status_code == 202
    job = run_now(Job.objects.get(pk=int(response.json()["id"])))
    assert job.status == "done", job.error

    with connection.cursor() as cursor:
        tables = schema_tables("acme")
        assert_same_rows(rows(cursor, "acme", tables), rows(cursor, "acme-two", tables), "acme")
    signed_in = JsonClient(host="acme-two.localhost").post(
        "/api/auth/token", {"username": "user0500", "password": "password-500"}
    )
    assert signed_in.status_code == 200
    with schema_context("acme-two"):
        assert AuthToken.objects.count() == AuthToken.objects.filter(user__username__in=["alice", "bob"]).count() + 21


def _named(data: bytes):
    import io

    upload = io.BytesIO(data)
    upload.name = "acme.tar.gz"
    return upload


@pytest.fixture
def second_database() -> Iterator[str]:
    """An empty database on the same server, migrated by the project's own command: another installation."""
    url = database_url()
    name = connection.settings_dict["NAME"] + "_second"
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    second_url = urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        manage(second_url, "migrate_tenants", "-v", "0", "--no-pool")
        yield second_url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(url: str, *arguments: str) -> str:
    """A command of the same application (the test session's apps and hasher) on another database."""
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.process_settings"}
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_round_trip_to_a_second_database(staff, big_acme, second_database, tmp_path: Path):
    path = tmp_path / "acme.tar.gz"
    path.write_bytes(export_via_api(staff))
    assert "imported acme" in manage(second_database, "import_tenant", str(path))

    with connection.cursor() as cursor:
        tables = schema_tables("acme")
        source = rows(cursor, "acme", tables)
    with psycopg.connect(second_database) as other, other.cursor() as cursor:
        copy = rows(cursor, "acme", tables)
        cursor.execute("SELECT id, name, plan_id, created_at FROM tenants_tenant")
        assert [row[:3] for row in cursor.fetchall()] == [("acme", "Acme Corporation", "enterprise")]
        cursor.execute("SELECT domain FROM tenants_domain")
        assert cursor.fetchall() == [("acme.localhost",)]
    assert_same_rows(source, copy, "acme")

    # An imported user signs in with their old password on the other installation.
    with gunicorn_server(second_database, tmp_path / "access.log", workers=1) as port:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/auth/token",
            data=json.dumps({"username": "user0042", "password": "password-42"}).encode(),
            headers={"Content-Type": "application/json", "X-Tenant-ID": "acme"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200 and json.loads(response.read())["token"]
