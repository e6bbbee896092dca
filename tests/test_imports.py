"""Imports (SPEC 7): an archive becomes a new tenant, here or on another server, all of it or nothing;
hostile archives are refused with a clear 4xx (or a failed job with a clear error) and leave nothing behind.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_tenants.utils import schema_context

from accounts import services as account_services
from core.jobs.models import Job
from core.jobs.services import run_now
from core.jobs.storage import archives
from core.models import AuditEvent
from tenants import services
from tenants.archive import schema_tables
from tenants.migrator import expected_migrations
from tenants.models import Domain, Tenant
from tests.archives import export_bytes, gzip_of, members, pack, rebuild
from tests.conftest import JsonClient, drop_tenant, schema_exists

pytestmark = pytest.mark.django_db

DEFERRED_FK_ON_CITUS = (
    "the import job ended done with a row that breaks a foreign key: deferred checks are not made on the workers; open"
)


def upload(client: JsonClient, data: bytes, **fields: str):
    archive = io.BytesIO(data)
    archive.name = "tenant.tar.gz"
    return client.post("/admin/tenants/import", {"archive": archive, **fields}, content_type="multipart/form-data")


def imported(client: JsonClient, data: bytes, **fields: str) -> Job:
    response = upload(client, data, **fields)
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["kind"], body["status"]) == ("tenant.import", "queued")
    return run_now(Job.objects.get(pk=int(body["id"])))


def rows_of(schema: str) -> dict[str, list]:
    """Every row of every table of the schema (its migration records aside), in primary-key order."""
    found = {}
    with connection.cursor() as cursor:
        for table in schema_tables(schema):
            if table.name == "django_migrations":
                continue
            order = ", ".join(f'"{column}"' for column in table.key) or "1"
            cursor.execute(f'SELECT row_to_json(t)::text FROM "{schema}"."{table.name}" t ORDER BY {order}')
            found[table.name] = [json.loads(row[0]) for row in cursor.fetchall()]
    return found


def test_round_trip_on_the_same_server(staff):
    data = export_bytes("acme")
    job = imported(staff, data, id="acme-copy", name="Acme Copy")
    assert job.status == "done", job.error
    assert job.result["tenant"] == "acme-copy" and job.result["source"] == "acme"
    assert not archives().exists(job.params["upload"]), "the upload is deleted once imported"

    source, copy = rows_of("acme"), rows_of("acme-copy")
    assert source.keys() == copy.keys()
    import_event = copy["accounts_auditevent"].pop()
    assert (import_event["action"], import_event["after"]["source"]) == ("tenant.import", "acme")
    assert source == copy

    detail = staff.get("/admin/tenants/acme-copy").json()
    assert (detail["name"], detail["plan"], detail["state"], detail["created_at"]) == (
        "Acme Copy",
        "enterprise",
        "active",
        1700000000,
    )
    assert detail["domains"] == ["acme-copy.localhost"] and detail["user_count"] == 2
    # The users sign in with their old passwords; new rows continue the sequences.
    token = JsonClient(host="acme-copy.localhost").post(
        "/api/auth/token", {"username": "alice", "password": "demo-pass-2024"}
    )
    assert token.status_code == 200
    alice = JsonClient(host="acme-copy.localhost", token=token.json()["token"])
    created = alice.post("/api/users", {"name": "Newcomer"})
    assert created.status_code == 201 and int(created.json()["id"]) > max(
        int(u["id"]) for u in source["accounts_tenantuser"]
    )
    with connection.cursor() as cursor:
        cursor.execute('SELECT app, name FROM "acme-copy".django_migrations')
        assert set(cursor.fetchall()) >= expected_migrations()


def test_import_keeps_the_id_when_none_is_given_and_refuses_a_taken_one(staff):
    data = export_bytes("globex")
    taken = upload(staff, data)
    assert (taken.status_code, taken.json()) == (409, {"error": "Tenant already exists"})
    services.delete_tenant("globex")
    services.purge_due_tenants()  # within the grace period: still taken
    assert upload(staff, data).status_code == 409
    assert upload(staff, data, id="import").json()["error"] == "Tenant id 'import' is reserved"
    assert upload(staff, data, id="Bad Id").status_code == 400


def test_an_archive_from_an_older_migration_state_is_migrated_forward(staff):
    tenant = services.provision_tenant(tenant_id="oldco", name="Old Co")
    with schema_context("oldco"):
        account_services.create_user(tenant, username="olga", name="Olga", role="admin", password="olgas-password")
    # Take the schema back to before the audit trail existed, as an older release left it.
    connection.set_schema("oldco")
    MigrationExecutor(connection).migrate([("accounts", "0002_workspace_settings")])
    connection.set_schema_to_public()
    assert "accounts_auditevent" not in {table.name for table in schema_tables("oldco")}
    data = export_bytes("oldco")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert ["accounts", "0003_audit_events"] not in manifest["migrations"]

    job = imported(staff, data, id="newco")
    assert job.status == "done", job.error
    with schema_context("newco"):
        assert [event.action for event in AuditEvent.objects.all()] == ["tenant.import"]
    with connection.cursor() as cursor:
        cursor.execute('SELECT app, name FROM "newco".django_migrations')
        assert ("accounts", "0004_audit_event_moves_to_core") in set(cursor.fetchall())
    token = JsonClient(tenant="newco").post("/api/auth/token", {"username": "olga", "password": "olgas-password"})
    assert token.status_code == 200


def nothing_left(tenant_id: str = "acme-copy") -> bool:
    return not (
        Tenant.objects.filter(pk=tenant_id).exists()
        or Domain.objects.filter(domain__startswith=tenant_id).exists()
        or schema_exists(tenant_id)
    )


def first_user_line_renamed(content: bytes) -> bytes:
    return content.replace(b'"username":"alice"', b'"username":"alise"', 1)


HOSTILE = {
    "bad gzip": (lambda data: b"\x1f\x8b\x08\x00garbage" * 50, "Invalid archive: not a gzip-compressed tar file"),
    "gzip, not tar": (lambda data: gzip_of(b"hello " * 1000), "Invalid archive: not a gzip-compressed tar file"),
    "truncated": (lambda data: data[: len(data) // 2], "Invalid archive: it is truncated"),
    "foreign": (
        lambda data: pack([("README", b"hi"), ("manifest.json", b"{}")]),
        "Invalid archive: not a tenant archive (its first entry must be manifest.json)",
    ),
    "not our format": (
        lambda data: rebuild(data, manifest=lambda m: m.update(format="backup")),
        "Invalid archive: not a tenant archive",
    ),
    "newer format": (
        lambda data: rebuild(data, manifest=lambda m: m.update(format_version=99)),
        "Invalid archive: format version 99 is not supported (this server reads 1)",
    ),
    "bad JSON": (
        lambda data: rebuild(data, table=("accounts_tenantuser", lambda c: c.replace(b"{", b"{{", 1))),
        "Invalid archive: tables/accounts_tenantuser.jsonl, line 1: not valid JSON",
    ),
    "bad manifest JSON": (
        lambda data: pack([("manifest.json", b"{not json"), *members(data)[1:]]),
        "Invalid archive: manifest.json is not valid JSON",
    ),
    "wrong checksum": (
        lambda data: rebuild(data, table=("accounts_tenantuser", first_user_line_renamed), fix_checksums=False),
        "Invalid archive: tables/accounts_tenantuser.jsonl does not match its checksum",
    ),
    "another schema": (
        lambda data: rebuild(data, manifest=lambda m: m.update(schema="public")),
        "Invalid archive: the manifest names schema 'public', not the tenant's own",
    ),
    "a table of another schema": (
        lambda data: rebuild(data, manifest=lambda m: m["tables"][0].update(name="public.tenants_tenant")),
        "Invalid archive: bad table name 'public.tenants_tenant'",
    ),
    "a path out of the archive": (
        lambda data: rebuild(data, extra=lambda tar: tar.addfile(tarfile.TarInfo("../evil.sh"), io.BytesIO(b""))),
        "Invalid archive: unsafe path '../evil.sh'",
    ),
    "a link": (
        lambda data: rebuild(data, extra=lambda tar: tar.addfile(symlink("tables/x.jsonl", "/etc/passwd"))),
        "Invalid archive: 'tables/x.jsonl' is not a regular file",
    ),
    "an entry the manifest does not name": (
        lambda data: rebuild(data, extra=lambda tar: tar.addfile(tarfile.TarInfo("tables/x.jsonl"), io.BytesIO(b""))),
        "Invalid archive: unexpected entry 'tables/x.jsonl'",
    ),
    "a missing table": (
        lambda data: pack([entry for entry in members(data) if entry[0] != "tables/accounts_authtoken.jsonl"]),
        "Invalid archive: it lacks tables/accounts_authtoken.jsonl",
    ),
    "unknown migrations": (
        lambda data: rebuild(data, manifest=lambda m: m["migrations"].append(["accounts", "0099_future"])),
        "Invalid archive: it was made by a newer or another version of the platform "
        "(unknown migrations: accounts.0099_future)",
    ),
    "a registry about another tenant": (
        lambda data: rebuild(data, manifest=lambda m: m["tenant"].update(id="globex") or m.update(schema="globex")),
        "Invalid archive: registry.json is about another tenant",
    ),
}


def symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.fixture(scope="module")
def acme_archive(django_db_setup, django_db_blocker) -> bytes:
    with django_db_blocker.unblock():
        return export_bytes("acme")


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused_with_a_clear_error(staff, acme_archive, case):
    make, message = HOSTILE[case]
    stored_before = set(archives().listdir("imports")[1]) if archives().exists("imports") else set()
    response = upload(staff, make(acme_archive), id="acme-copy")
    assert response.status_code == 400, response.content
    assert response.json()["error"].startswith(message)
    assert nothing_left()
    assert Job.objects.filter(kind="tenant.import").count() == 0
    stored_after = set(archives().listdir("imports")[1]) if archives().exists("imports") else set()
    assert stored_after == stored_before, "a refused archive is not kept"


def test_an_archive_whose_tables_do_not_match_its_migration_state_fails_its_job(staff, acme_archive):
    def add_table(manifest: dict) -> None:
        manifest["tables"].append(
            {"name": "evil", "file": "tables/evil.jsonl", "columns": ["id"], "rows": 0, "sha256": EMPTY, "bytes": 0}
        )

    data = rebuild(
        acme_archive, manifest=add_table, extra=lambda tar: tar.addfile(tarfile.TarInfo("tables/evil.jsonl"))
    )
    job = imported(staff, data, id="acme-copy")
    assert job.status == "failed"
    assert job.error == "Invalid archive: its tables do not match its migration state (extra: evil; missing: none)"
    assert nothing_left() and not archives().exists(job.params["upload"])


EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.not_on_citus(DEFERRED_FK_ON_CITUS)
def test_a_row_that_breaks_a_constraint_fails_the_job_and_leaves_nothing(staff, acme_archive):
    def orphan_token(content: bytes) -> bytes:
        row = json.loads(content.splitlines()[0])
        row["user_id"] = 424242
        return content + json.dumps(row | {"id": 999, "key_digest": "f" * 64}).encode() + b"\n"

    job = imported(staff, rebuild(acme_archive, table=("accounts_authtoken", orphan_token)), id="acme-copy")
    assert job.status == "failed"
    assert job.error.startswith(
        'Invalid archive: its rows break the rules of their tables (insert or update on table "accounts_authtoken"'
    )
    assert nothing_left()


def test_size_limits(staff, acme_archive, settings):
    settings.TENANT_ARCHIVE_MAX_BYTES = 10_000
    settings.UPLOAD_BODY_LIMITS = {"/admin/tenants/import": 10_000 + 64 * 1024}
    big = JsonClient(token=staff.defaults["HTTP_AUTHORIZATION"].split()[1])
    response = upload(big, acme_archive + b"\0" * 200_000)
    assert response.status_code == 413 and response.json()["error"].startswith("Request body too large")
    response = upload(big, acme_archive + b"\0" * 20_000)
    assert response.status_code == 413 and response.json()["error"] == "Archive too large (limit 10000 bytes)"

    settings.TENANT_ARCHIVE_MAX_BYTES = 10_000_000
    settings.TENANT_ARCHIVE_MAX_UNPACKED_BYTES = 1_000
    bomb = upload(staff, acme_archive, id="acme-copy")
    assert bomb.json()["error"] == "Invalid archive: it unpacks to more than the limit of 1000 bytes"
    assert nothing_left()


def test_bad_requests(staff):
    assert staff.post("/admin/tenants/import", {"id": "x"}).status_code == 415
    missing = staff.post("/admin/tenants/import", {"id": "x"}, content_type="multipart/form-data")
    assert missing.status_code == 400 and missing.json()["error"] == "Invalid archive: No file was submitted."
    assert JsonClient().post("/admin/tenants/import", {}, content_type="multipart/form-data").status_code == 401


def test_other_domains_are_kept_only_under_the_same_id_and_only_if_sound(staff):
    tenant = services.provision_tenant(tenant_id="carrier", name="Carrier")
    for host in ("carrier.example.com", "127.0.0.1", "bad host!"):
        Domain.objects.create(domain=host, tenant=tenant, is_primary=False)
    data = export_bytes("carrier")
    copy = imported(staff, data, id="carrier-copy")
    assert copy.status == "done", copy.error
    assert staff.get("/admin/tenants/carrier-copy").json()["domains"] == ["carrier-copy.localhost"]

    drop_tenant("carrier")  # as if it had been purged, or the archive came from another server
    again = imported(staff, data)
    assert again.status == "done", again.error
    assert staff.get("/admin/tenants/carrier").json()["domains"] == ["carrier.localhost", "carrier.example.com"]
