"""Exports (SPEC 7): the platform's full-fidelity archive of a tenant, and a workspace's own data for its admins."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import pytest
from django_tenants.utils import schema_context

from accounts.models import AuthToken, TenantUser
from core.jobs.models import Job
from core.jobs.services import run_now
from tenants.archive import read_archive
from tests.conftest import JsonClient

pytestmark = pytest.mark.django_db

JOB_KEYS = {"id", "kind", "tenant", "status", "progress", "created_at", "finished_at", "result", "error"}


def run(job_id: str) -> Job:
    return run_now(Job.objects.get(pk=int(job_id)))


def test_staff_export_of_a_tenant(staff):
    queued = staff.post("/admin/tenants/acme/exports")
    assert queued.status_code == 202
    job = queued.json()
    assert set(job) == JOB_KEYS
    assert (job["kind"], job["tenant"], job["status"], job["progress"], job["result"]) == (
        "tenant.export",
        "acme",
        "queued",
        0,
        None,
    )
    listed = staff.get("/admin/tenants/acme/exports").json()
    assert listed["tenant"] == "acme" and listed["count"] == 1 and listed["exports"][0]["id"] == job["id"]
    assert staff.get(f"/admin/jobs/{job['id']}/download").json() == {"error": "Job not finished yet"}

    run(job["id"])
    done = staff.get(f"/admin/jobs/{job['id']}").json()
    assert (done["status"], done["progress"], done["error"]) == ("done", 100, None)
    assert done["result"]["download"] == f"http://localhost/admin/jobs/{job['id']}/download"
    assert done["result"]["rows"]["accounts_tenantuser"] == 2
    assert staff.get("/admin/tenants/acme/exports").json()["exports"][0]["result"] == done["result"]

    response = staff.get(f"/admin/jobs/{job['id']}/download")
    assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
    assert response["Content-Disposition"].startswith('attachment; filename="acme-')
    data = b"".join(response.streaming_content)
    assert len(data) == done["result"]["bytes"]

    archive = read_archive(io.BytesIO(data))  # every checksum and count holds
    assert archive.tenant_id == "acme" and archive.manifest["schema"] == "acme"
    assert archive.registry["tenant"]["created_at"].startswith("2023-11-14T22:13:20")
    assert archive.registry["plan"]["id"] == "enterprise"
    assert archive.registry["domains"] == [{"domain": "acme.localhost", "is_primary": True}]
    assert ("accounts", "0001_initial") in archive.migrations
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        users = [json.loads(line) for line in tar.extractfile("tables/accounts_tenantuser.jsonl")]
        tokens = [json.loads(line) for line in tar.extractfile("tables/accounts_authtoken.jsonl")]
    assert names[:2] == ["manifest.json", "registry.json"]
    assert {"tables/accounts_auditevent.jsonl", "tables/accounts_workspacesettings.jsonl"} <= set(names)
    assert "tables/django_migrations.jsonl" not in names
    with schema_context("acme"):
        alice = TenantUser.objects.get(username="alice")
        digests = set(AuthToken.objects.values_list("key_digest", flat=True))
    assert {"username": "alice", "password": alice.password} in [
        {"username": u["username"], "password": u["password"]} for u in users
    ]
    assert {token["key_digest"] for token in tokens} == digests


def test_exports_are_staff_only_and_platform_only(staff, alice, keys):
    assert JsonClient().post("/admin/tenants/acme/exports").status_code == 401
    assert JsonClient(token=keys.alice).post("/admin/tenants/acme/exports").status_code == 401
    assert JsonClient(host="acme.localhost", token=keys.admin).post("/admin/tenants/acme/exports").status_code == 404
    assert staff.post("/admin/tenants/nope/exports").json() == {"error": "Tenant not found"}
    job = staff.post("/admin/tenants/acme/exports").json()
    run(job["id"])
    # A tenant admin sees none of the platform's exports of their tenant.
    assert alice.get(f"/api/exports/{job['id']}").status_code == 404
    assert alice.get(f"/api/exports/{job['id']}/download").status_code == 404
    assert alice.get("/api/exports").json()["count"] == 0


def test_an_export_is_audited(staff, alice):
    job = staff.post("/admin/tenants/acme/exports").json()
    event = staff.get("/admin/tenants/acme/events").json()["events"][0]
    assert (event["action"], event["actor"], event["after"]) == (
        "tenant.export",
        {"kind": "platform", "name": "admin"},
        {"job": int(job["id"])},
    )


def test_a_deleted_tenant_can_still_be_exported(staff):
    staff.delete("/admin/tenants/globex")
    job = staff.post("/admin/tenants/globex/exports").json()
    assert run(job["id"]).status == "done"


def test_workspace_export_for_tenant_admins(alice, bob, charlie):
    assert bob.post("/api/exports").json() == {"error": "Tenant admin role required"}
    assert charlie.post("/api/exports").json() == {"error": "Feature 'export' is not enabled on the starter plan"}
    alice.put("/api/settings", {"display_name": "ACME Inc", "timezone": "Europe/Paris"})

    queued = alice.post("/api/exports")
    assert queued.status_code == 202
    job = queued.json()
    assert set(job) == JOB_KEYS and (job["kind"], job["tenant"]) == ("workspace.export", "acme")
    assert alice.get("/api/exports/" + job["id"] + "/download").status_code == 409
    run(job["id"])
    done = alice.get(f"/api/exports/{job['id']}").json()
    assert done["status"] == "done"
    assert done["result"]["download"] == f"http://localhost/api/exports/{job['id']}/download"
    assert (done["result"]["users"], done["result"]["audit_events"]) >= (2, 1)
    listed = alice.get("/api/exports").json()
    assert listed["tenant"] == "acme" and [item["id"] for item in listed["exports"]] == [job["id"]]

    response = alice.get(f"/api/exports/{job['id']}/download")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert sorted(archive.namelist()) == ["README.txt", "audit-events.json", "users.json", "workspace.json"]
        workspace = json.loads(archive.read("workspace.json"))
        users = json.loads(archive.read("users.json"))
        events = json.loads(archive.read("audit-events.json"))
        text = b"".join(archive.read(name) for name in archive.namelist())
    assert (workspace["id"], workspace["display_name"], workspace["settings"]["timezone"]) == (
        "acme",
        "ACME Inc",
        "Europe/Paris",
    )
    assert workspace["domains"] == ["acme.localhost"] and workspace["counts"]["users"] == len(users)
    assert [user["username"] for user in users] == ["alice", "bob"]
    assert set(users[0]) == {"id", "username", "name", "email", "role", "is_active", "created_at", "last_login"}
    assert {"settings.update", "workspace.export"} <= {event["action"] for event in events}
    # No secrets: no password hash, no token digest.
    with schema_context("acme"):
        secrets = [user.password for user in TenantUser.objects.all()]
        secrets += list(AuthToken.objects.values_list("key_digest", flat=True))
    assert not any(secret.encode() in text for secret in secrets if secret)
    # Another tenant never sees this one's exports.
    other = JsonClient(token=alice.defaults["HTTP_AUTHORIZATION"].split()[1], tenant="globex")
    assert other.get(f"/api/exports/{job['id']}").status_code == 401


def test_unknown_jobs_and_files(staff, alice):
    assert alice.get("/api/exports/999999").json() == {"error": "Job not found"}
    assert alice.get("/api/exports/x/download").status_code == 404
    assert staff.get("/admin/jobs/999999/download").json() == {"error": "Job not found"}
    failed = Job.objects.create(kind="tenant.export", tenant_id="acme", status="failed", error="x")
    assert staff.get(f"/admin/jobs/{failed.pk}/download").json() == {"error": "This job has no file to download"}
