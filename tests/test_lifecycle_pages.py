"""The lifecycle in the Django admin (state, delete and restore with confirmation, exports with progress and
download) and on the tenant's dashboard (the workspace's own exports)."""

from __future__ import annotations

import io
import re
import tarfile
import zipfile

import pytest
from django.db import connection

from core.jobs.models import Job
from core.jobs.services import run_now
from tenants.models import Tenant
from tests.conftest import JsonClient
from tests.test_pages import FORM, page, signed_in

pytestmark = pytest.mark.django_db

TENANTS = "/django-admin/tenants/tenant/"


@pytest.fixture
def operator() -> JsonClient:
    client = JsonClient()
    connection.set_schema_to_public()  # signing in outside a request: an earlier request may have left a tenant's
    assert client.login(username="admin", password="demo-pass-2024")
    return client


def act(operator: JsonClient, action: str, *tenant_ids: str, confirm: bool = True):
    data = {"action": action, "_selected_action": list(tenant_ids)}
    if confirm:
        data["confirm"] = "yes"
    return operator.post(TENANTS, data, content_type=FORM, follow=confirm)


def test_admin_shows_state_and_filters_by_it(operator):
    act(operator, "suspend", "globex")
    listing = page(operator.get(TENANTS))
    assert '<td class="field-state">suspended</td>' in listing and '<td class="field-state">active</td>' in listing
    assert "acme" not in page(operator.get(TENANTS + "?state=suspended")).split("result_list")[1]


def test_admin_deletes_and_restores_with_confirmation(operator, keys):
    asked = page(act(operator, "delete_tenants", "globex", confirm=False))
    assert "Delete these tenants?" in asked and "kept for 30 days" in asked
    assert 'value="Yes, delete"' in asked and '<ul id="tenants-to-delete_tenants">' in asked
    assert Tenant.objects.get(pk="globex").deleted_at is None

    done = page(act(operator, "delete_tenants", "globex"))
    assert "Deleted 1 tenant(s): globex; they can be restored until" in done
    assert JsonClient(tenant="globex", token=keys.charlie).get("/api/me").status_code == 404
    listing = page(operator.get(TENANTS + "?state=deleted"))
    assert "globex" in listing and "deleted (purged after" in listing
    # A deleted tenant's page is read only, and the other actions refuse it with the reason.
    change = page(operator.get(TENANTS + "globex/change/"))
    assert 'name="_save"' not in change
    assert "Not done for globex: Tenant is deleted; restore it first" in page(act(operator, "suspend", "globex"))

    assert "Restore these tenants?" in page(act(operator, "restore_tenants", "globex", confirm=False))
    assert "Restored 1 tenant(s): globex." in page(act(operator, "restore_tenants", "globex"))
    assert JsonClient(tenant="globex", token=keys.charlie).get("/api/me").status_code == 200
    assert "Not done for acme: Tenant is not deleted" in page(act(operator, "restore_tenants", "acme"))


def test_admin_exports_with_progress_and_download(operator):
    assert "Queued the export of 1 tenant(s): acme" in page(act(operator, "export_tenants", "acme"))
    job = Job.objects.get(kind="tenant.export", tenant_id="acme")
    change = page(operator.get(TENANTS + "acme/change/"))
    assert f'data-job="/django-admin/jobs/job/{job.pk}/status/"' in change and 'data-job-status="queued"' in change
    assert '<progress max="100" value="0"' in change and "jobs/progress.js" in change

    run_now(job)
    status = operator.get(f"/django-admin/jobs/job/{job.pk}/status/").json()
    download = f"/django-admin/jobs/job/{job.pk}/download/"
    assert status["status"] == "done" and status["progress"] == 100 and status["result"]["download"] == download
    change = page(operator.get(TENANTS + "acme/change/"))
    assert re.search(rf'<a class="job-download" href="{download}">Download</a>', change)
    jobs = page(operator.get("/django-admin/jobs/job/"))
    assert f'data-job="/django-admin/jobs/job/{job.pk}/status/"' in jobs and 'data-job-status="done"' in jobs
    response = operator.get(download)
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content))) as tar:
        assert tar.getnames()[0] == "manifest.json"
    assert JsonClient().get(download).status_code == 302  # to the admin's sign-in


def test_dashboard_exports_for_admins(keys):
    alice = signed_in("alice")
    assert 'id="export-workspace"' in page(alice.get("/"))
    assert 'id="export-workspace"' not in page(signed_in("bob").get("/"))
    assert 'id="export-workspace"' not in page(signed_in("charlie", host="globex.localhost").get("/"))
    refused = signed_in("bob").post("/exports", {}, content_type=FORM)
    assert refused.status_code == 403

    queued = alice.post("/exports", {}, content_type=FORM, follow=True)
    job = Job.objects.get(kind="workspace.export", tenant_id="acme")
    text = page(queued)
    assert f"Export #{job.pk} queued" in text
    assert f'data-job="/api/exports/{job.pk}"' in text and 'data-job-status="queued"' in text

    run_now(job)
    text = page(alice.get("/"))
    assert f'<a class="job-download" href="/api/exports/{job.pk}/download">Download</a>' in text
    # The progress script follows the job through the API with the page's session.
    assert alice.get(f"/api/exports/{job.pk}").json()["progress"] == 100
    with zipfile.ZipFile(io.BytesIO(b"".join(alice.get(f"/api/exports/{job.pk}/download").streaming_content))) as z:
        assert "users.json" in z.namelist()
