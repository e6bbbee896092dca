"""Delete, restore, purge (SPEC 7): a deleted tenant is unknown at once, restorable for its grace
period, then purged: schema gone, a tombstone and the platform's audit trail kept, the id free.
"""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts import services as account_services
from core.models import AuditEvent
from tenants import services
from tenants.models import Domain, Tenant, TenantTombstone
from tests.conftest import JsonClient, schema_exists

pytestmark = pytest.mark.django_db

GRACE = datetime.timedelta(days=30)

PURGE_ON_CITUS = (
    "these tests write the tenant's rows and purge it in one test transaction, and a worker drops no "
    "table that has pending trigger events of its own transaction; a purge of committed data, as in "
    "production, runs on Citus in tests/test_purge.py"
)


@pytest.fixture
def doomed(db) -> tuple[Tenant, str]:
    """A tenant with an admin and a token, and a second domain."""
    tenant = services.provision_tenant(tenant_id="doomed", name="Doomed Ltd")
    Domain.objects.create(domain="doomed-alias.localhost", tenant=tenant, is_primary=False)
    with schema_context("doomed"):
        user = account_services.create_user(tenant, username="dora", name="Dora", role="admin")
        key = account_services.issue_token(user)
    return tenant, key


def move_time_forward(monkeypatch, delta: datetime.timedelta) -> None:
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + delta)


def test_delete_answers_202_and_the_tenant_is_unknown_at_once(staff, doomed):
    _, key = doomed
    before = timezone.now()
    response = staff.delete("/admin/tenants/doomed")
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "state", "purge_after"} and (body["id"], body["state"]) == ("doomed", "deleted")
    assert int((before + GRACE).timestamp()) <= body["purge_after"] <= int((timezone.now() + GRACE).timestamp())

    for client in (
        JsonClient(tenant="doomed", token=key),
        JsonClient(host="doomed.localhost", token=key),
        JsonClient(host="doomed-alias.localhost", token=key),
    ):
        answer = client.get("/api/me")
        assert answer.status_code == 404
        assert answer.json()["error"].startswith("Unknown tenant: doomed")
    # Platform answers keep showing it, with its state; its data and its id are still there.
    detail = staff.get("/admin/tenants/doomed").json()
    assert (detail["state"], detail["active"], detail["purge_after"]) == ("deleted", False, body["purge_after"])
    assert schema_exists("doomed")
    conflict = staff.post("/admin/tenants", {"id": "doomed", "name": "Again"})
    assert (conflict.status_code, conflict.json()) == (409, {"error": "Tenant already exists"})
    # Changes other than restore are refused while deleted; a second delete changes nothing.
    assert staff.put("/admin/tenants/doomed/suspend").status_code == 409
    assert staff.patch("/admin/tenants/doomed", {"name": "X"}).status_code == 409
    again = staff.delete("/admin/tenants/doomed")
    assert (again.status_code, again.json()) == (202, body)


def test_restore_brings_back_the_previous_state(staff, doomed):
    _, key = doomed
    services.set_tenant_active("doomed", False)
    staff.delete("/admin/tenants/doomed")
    restored = staff.post("/admin/tenants/doomed/restore")
    assert restored.status_code == 200
    assert (restored.json()["state"], restored.json()["active"], restored.json()["purge_after"]) == (
        "suspended",
        False,
        None,
    )
    assert JsonClient(tenant="doomed", token=key).get("/api/me").status_code == 403

    staff.put("/admin/tenants/doomed/activate")
    staff.delete("/admin/tenants/doomed")
    assert staff.post("/admin/tenants/doomed/restore").json()["state"] == "active"
    assert JsonClient(host="doomed-alias.localhost", token=key).get("/api/me").status_code == 200
    assert staff.post("/admin/tenants/doomed/restore").json() == {"error": "Tenant is not deleted"}

    with schema_context("doomed"):
        actions = list(AuditEvent.objects.filter(target="tenant:doomed").values_list("action", flat=True))
    assert actions[:5] == ["tenant.restore", "tenant.delete", "tenant.activate", "tenant.restore", "tenant.delete"]


def test_no_restore_once_the_grace_period_is_over(staff, doomed, monkeypatch):
    staff.delete("/admin/tenants/doomed")
    move_time_forward(monkeypatch, GRACE + datetime.timedelta(minutes=1))
    answer = staff.post("/admin/tenants/doomed/restore")
    assert answer.status_code == 409
    assert answer.json()["error"] == "The grace period is over: the tenant is due to be purged"


@pytest.mark.not_on_citus(PURGE_ON_CITUS)
def test_purge_after_the_grace_period(staff, doomed, monkeypatch):
    staff.delete("/admin/tenants/doomed")
    call_command("purge_tenants", verbosity=0)
    assert schema_exists("doomed"), "nothing is purged within the grace period"

    move_time_forward(monkeypatch, GRACE + datetime.timedelta(hours=1))
    assert services.purge_due_tenants() == ["doomed"]
    assert not schema_exists("doomed")
    assert not Tenant.objects.filter(pk="doomed").exists()
    assert not Domain.objects.filter(domain__startswith="doomed").exists()
    assert staff.get("/admin/tenants/doomed").status_code == 404

    tombstone = TenantTombstone.objects.get(tenant_id="doomed")
    assert (tombstone.name, tombstone.plan_id) == ("Doomed Ltd", "starter")
    trail = [(event["action"], event["actor"]["kind"]) for event in tombstone.audit_trail]
    assert trail == [("tenant.create", "system"), ("tenant.delete", "platform"), ("tenant.purge", "system")]
    assert tombstone.audit_trail[1]["actor"]["name"] == "admin"
    # The id is free again.
    assert staff.post("/admin/tenants", {"id": "doomed", "name": "Doomed Again"}).status_code == 201
    assert services.purge_due_tenants() == []


def test_purge_leaves_restored_and_live_tenants_alone(staff, doomed, monkeypatch):
    staff.delete("/admin/tenants/doomed")
    staff.post("/admin/tenants/doomed/restore")
    move_time_forward(monkeypatch, GRACE * 2)
    assert services.purge_due_tenants() == []
    assert schema_exists("doomed") and schema_exists("acme")


def test_unknown_tenants(staff):
    assert staff.delete("/admin/tenants/nope").status_code == 404
    assert staff.post("/admin/tenants/nope/restore").status_code == 404


@pytest.mark.not_on_citus(PURGE_ON_CITUS)
def test_purge_is_also_a_scheduled_job(staff, doomed, monkeypatch):
    from procrastinate.contrib.django import app

    from tenants.tasks import purge_due

    scheduled = {(task.task.name, task.cron) for task in app.periodic_registry.periodic_tasks.values()}
    assert ("tenants.purge_due", "17 * * * *") in scheduled
    staff.delete("/admin/tenants/doomed")
    move_time_forward(monkeypatch, GRACE + datetime.timedelta(days=1))
    assert purge_due(timestamp=int(timezone.now().timestamp())) == ["doomed"]
    assert not schema_exists("doomed")
