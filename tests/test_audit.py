"""The audit trail: every platform and tenant admin action, in the same transaction as the change."""

import pytest
from django_tenants.utils import schema_context

from core.models import AuditEvent
from tests.conftest import JsonClient

pytestmark = pytest.mark.django_db


def events(client, path="/api/events"):
    """The trail without what seed_demo wrote (actor "system": the demo tenants and their users)."""
    response = client.get(path)
    assert response.status_code == 200, response.content
    body = response.json()
    seeded = [e for e in body["events"] if e["actor"]["kind"] == "system"]
    assert {e["action"] for e in seeded} <= {"tenant.create", "tenant.update", "user.create", "user.update"}
    body["events"] = [e for e in body["events"] if e["actor"]["kind"] != "system"]
    body["count"] -= len(seeded)
    return body


def count_events(tenant_id: str) -> int:
    with schema_context(tenant_id):
        return AuditEvent.objects.count()


def test_tenant_admin_actions_are_recorded_newest_first(alice):
    created = alice.post("/api/users", {"name": "Diana", "password": "diana-secret-1"}).json()
    alice.patch(f"/api/users/{created['id']}", {"role": "admin", "password": "diana-secret-2"})
    alice.put("/api/settings", {"theme_color": "#112233"})
    alice.delete(f"/api/users/{created['id']}")

    body = events(alice)
    assert body["tenant"] == "acme"
    assert [e["action"] for e in body["events"]] == ["user.delete", "settings.update", "user.update", "user.create"]
    assert body["count"] == 4
    delete, settings_change, update, create = body["events"]
    assert all(e["actor"] == {"kind": "tenant", "name": "alice"} for e in body["events"])
    assert create["before"] is None and create["after"]["name"] == "Diana"
    assert create["target"] == f"user:{created['id']}"
    assert (update["before"]["role"], update["after"]["role"]) == ("member", "admin")
    assert update["after"]["password_changed"] is True
    assert settings_change["before"]["theme_color"] == "#2563eb"
    assert settings_change["after"]["theme_color"] == "#112233"
    assert delete["before"]["name"] == "Diana" and delete["after"] is None
    assert "diana-secret" not in str(body)
    assert body["events"][0]["created_at"] >= body["events"][-1]["created_at"]


def test_platform_actions_are_recorded_in_the_tenants_trail(staff, charlie):
    staff.put("/admin/tenants/globex/suspend")
    staff.put("/admin/tenants/globex/activate")
    staff.patch("/admin/tenants/globex", {"plan": "enterprise", "max_users": 50})
    body = events(staff, "/admin/tenants/globex/events")
    assert [e["action"] for e in body["events"]] == ["tenant.update", "tenant.activate", "tenant.suspend"]
    plan_change, activate, suspend = body["events"]
    assert plan_change["actor"] == {"kind": "platform", "name": "admin"}
    assert plan_change["before"]["plan"] == "starter" and plan_change["after"]["plan"] == "enterprise"
    assert plan_change["after"]["overrides"]["max_users"] == 50
    assert (suspend["before"], suspend["after"]) == ({"active": True}, {"active": False})
    assert (activate["before"], activate["after"]) == ({"active": False}, {"active": True})
    # The tenant's admins see the platform's actions on their tenant too.
    assert [e["action"] for e in events(charlie)["events"]] == [e["action"] for e in body["events"]]


def test_tenant_create_is_recorded_with_its_first_admin(staff):
    staff.post(
        "/admin/tenants",
        {"id": "initech", "name": "Initech", "admin": {"username": "bill", "name": "Bill", "password": "tps-report-9"}},
    )
    body = events(staff, "/admin/tenants/initech/events")
    assert [e["action"] for e in body["events"]] == ["user.create", "tenant.create"]
    assert body["events"][1]["after"]["name"] == "Initech"
    assert all(e["actor"]["kind"] == "platform" for e in body["events"])
    assert "tps-report-9" not in str(body)


def test_admin_actions_in_the_django_admin_are_recorded():
    operator = JsonClient()
    operator.login(username="admin", password="demo-pass-2024")
    operator.post(
        "/django-admin/tenants/tenant/",
        {"action": "suspend", "_selected_action": ["globex"], "confirm": "yes"},
        content_type="multipart/form-data",
    )
    with schema_context("globex"):
        event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.actor_kind, event.actor) == ("tenant.suspend", "platform", "admin")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", "/api/users/1", {"role": "member"}),  # last admin
        ("delete", "/api/users/1", None),  # last admin
        ("put", "/api/settings", {"max_users": 500}),  # plan-governed
        ("put", "/api/settings", {"timezone": "Nowhere/Land"}),  # invalid
        ("post", "/api/users", {"name": ""}),  # invalid
        ("post", "/api/users", {"name": "Bob again", "username": "charlie"}),  # taken
        ("patch", "/api/users/999", {"name": "Ghost"}),  # not found
    ],
)
def test_failed_tenant_actions_leave_no_event(charlie, method, path, body):
    before = count_events("globex")
    response = getattr(charlie, method)(path, body) if body is not None else getattr(charlie, method)(path)
    assert response.status_code >= 400
    assert count_events("globex") == before


def test_refused_user_at_the_limit_leaves_no_event(staff, charlie):
    staff.patch("/admin/tenants/globex", {"max_users": 1})
    before = count_events("globex")
    assert charlie.post("/api/users", {"name": "Over"}).status_code == 403
    assert count_events("globex") == before


def test_failed_platform_actions_leave_no_event(staff):
    before = count_events("globex")
    assert staff.patch("/admin/tenants/globex", {"plan": "platinum"}).status_code == 400
    assert staff.patch("/admin/tenants/globex", {"max_users": -5}).status_code == 400
    assert count_events("globex") == before


def test_events_are_for_tenant_admins_only(bob):
    response = bob.get("/api/events")
    assert response.status_code == 403
    assert response.json() == {"error": "Tenant admin role required"}


def test_events_are_per_tenant(alice, charlie):
    alice.put("/api/settings", {"display_name": "Acme only"})
    assert events(charlie)["count"] == 0
    assert "Acme only" not in str(events(charlie))


def test_platform_events_are_staff_only_and_404_for_unknown(staff, keys):
    assert JsonClient().get("/admin/tenants/acme/events").status_code == 401
    assert JsonClient(token=keys.alice, tenant="acme").get("/admin/tenants/acme/events").status_code == 401
    response = staff.get("/admin/tenants/nope/events")
    assert response.status_code == 404
    assert response.json() == {"error": "Tenant not found"}


def test_events_paginate(alice):
    for n in range(5):
        alice.put("/api/settings", {"display_name": f"Name {n}"})
    body = alice.get("/api/events?limit=2&offset=1").json()
    assert body["count"] == 8  # five changes, and seed_demo's creation of the tenant and its two users
    assert [e["after"]["display_name"] for e in body["events"]] == ["Name 3", "Name 2"]
