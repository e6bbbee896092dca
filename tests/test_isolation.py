"""Isolation under attack: no tenant ever sees another's data, whatever happened before.

Cross-tenant credentials are in test_tenant_auth.py; here: ids of the other tenant,
the schema of one request never leaking into the next on the same connection (after
errors, rollbacks and timeouts), and random interleavings of writes across three
tenants checked against a model.
"""

import pytest
from django.db import DatabaseError, connection, transaction
from django_tenants.utils import get_public_schema_name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import TenantUser
from api import tenant_views
from tenants import services
from tests.conftest import JsonClient

pytestmark = pytest.mark.django_db


def test_ids_of_the_other_tenants_users_are_not_found(alice, charlie):
    created = [charlie.post("/api/users", {"name": f"Globex {n}"}).json()["id"] for n in range(4)]
    acme_ids = {u["id"] for u in alice.get("/api/users").json()["users"]}
    for user_id in created:
        if user_id in acme_ids:
            continue
        for method, body in (("get", None), ("patch", {"name": "Hijacked"}), ("delete", None)):
            call = getattr(alice, method)
            response = call(f"/api/users/{user_id}", body) if body else call(f"/api/users/{user_id}")
            assert response.status_code == 404, (method, user_id)
    names = [u["name"] for u in charlie.get("/api/users").json()["users"]]
    assert names == ["Charlie"] + [f"Globex {n}" for n in range(4)]


def test_same_ids_in_two_tenants_are_two_different_users(alice, charlie):
    assert alice.get("/api/users/1").json()["name"] == "Alice"
    assert charlie.get("/api/users/1").json()["name"] == "Charlie"
    alice.patch("/api/users/1", {"name": "Alice A."})
    assert charlie.get("/api/users/1").json()["name"] == "Charlie"


def _failing_view(failure):
    def get(self, request):
        list(TenantUser.objects.all())  # the schema is in use when it fails
        failure()

    return get


def _raise_runtime():
    raise RuntimeError("boom in the middle of a request")


def _raise_database_error():
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")


def _raise_timeout():
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 10")
        cursor.execute("SELECT pg_sleep(2)")


@pytest.mark.parametrize("failure", [_raise_runtime, _raise_database_error, _raise_timeout])
def test_a_failed_request_does_not_leak_its_schema(monkeypatch, keys, failure):
    monkeypatch.setattr(tenant_views.AnalyticsViewSet, "retrieve", _failing_view(failure))
    acme = JsonClient(tenant="acme", token=keys.alice, raise_request_exception=False)
    assert acme.get("/api/analytics").status_code == 500
    # Same thread, same connection: the next request, for another tenant, sees only its own schema.
    body = JsonClient(tenant="globex", token=keys.charlie).get("/api/users").json()
    assert body["tenant"] == "globex"
    assert [u["name"] for u in body["users"]] == ["Charlie"]
    # And a platform request after it is back on the public schema alone.
    assert JsonClient(token=keys.admin).get("/admin/tenants").status_code == 200
    assert connection.schema_name == get_public_schema_name()
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        assert cursor.fetchone()[0] == "public"


@pytest.mark.parametrize(
    "refused",
    [
        {"tenant": "no-such-tenant"},  # unknown: 404
        {"host": "nowhere.localhost"},  # unknown host: 404
        {},  # no tenant named: 400
        {"tenant": "globex", "host": "acme.localhost"},  # header and host disagree: 400
    ],
)
def test_a_refused_request_is_answered_on_the_public_schema(keys, refused):
    """The schema a connection served last is never the one a refusal runs on."""
    assert JsonClient(tenant="acme", token=keys.alice).get("/api/users").status_code == 200
    assert connection.schema_name == "acme"
    assert JsonClient(token=keys.alice, **refused).get("/api/users").status_code in (400, 404)
    assert connection.schema_name == get_public_schema_name()


def test_a_request_error_in_one_tenant_then_the_other_by_subdomain(monkeypatch, keys):
    monkeypatch.setattr(tenant_views.AnalyticsViewSet, "retrieve", _failing_view(_raise_database_error))
    JsonClient(host="acme.localhost", token=keys.alice, raise_request_exception=False).get("/api/analytics")
    body = JsonClient(host="globex.localhost", token=keys.charlie).get("/api/me").json()
    assert body["id"] == "globex"


def test_platform_request_between_tenant_requests_does_not_carry_a_schema(keys):
    JsonClient(tenant="acme", token=keys.alice).get("/api/users")
    assert JsonClient(token=keys.admin).get("/admin/tenants/globex").json()["user_count"] == 1
    JsonClient(tenant="globex", token=keys.charlie).get("/api/users")
    assert JsonClient(token=keys.admin).get("/admin/tenants/acme").json()["user_count"] == 2


# --- Random interleavings across three tenants ------------------------------------------------

TENANTS = ("acme", "globex", "initech")
operations = st.lists(
    st.tuples(
        st.sampled_from(TENANTS),
        st.sampled_from(["create", "rename", "delete", "settings"]),
        st.integers(min_value=0, max_value=50),
    ),
    max_size=25,
)


@pytest.fixture
def three_tenants(keys, staff):
    response = staff.post(
        "/admin/tenants",
        {"id": "initech", "name": "Initech", "admin": {"username": "bill", "name": "Bill", "password": "tps-report-9"}},
    )
    assert response.status_code == 201
    for tenant_id in TENANTS:
        services.update_tenant(tenant_id, {"rate_limit_per_minute": 0, "max_users": 1000})
    token = JsonClient(tenant="initech").post("/api/auth/token", {"username": "bill", "password": "tps-report-9"})
    return {"acme": keys.alice, "globex": keys.charlie, "initech": token.json()["token"]}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_interleaved_writes_match_the_model(three_tenants, ops):
    with transaction.atomic():
        clients = {t: JsonClient(tenant=t, token=key) for t, key in three_tenants.items()}
        model = {t: {int(u["id"]): u["name"] for u in clients[t].get("/api/users").json()["users"]} for t in TENANTS}
        display = {t: clients[t].get("/api/settings").json()["settings"]["display_name"] for t in TENANTS}
        admin_ids = {t: min(model[t]) for t in TENANTS}  # the admin we act as is never touched
        for tenant, op, n in ops:
            client, users = clients[tenant], model[tenant]
            others = sorted(uid for uid in users if uid != admin_ids[tenant])
            if op == "create":
                body = client.post("/api/users", {"name": f"{tenant} user {n}"}).json()
                users[int(body["id"])] = f"{tenant} user {n}"
            elif op == "rename" and others:
                uid = others[n % len(others)]
                assert client.patch(f"/api/users/{uid}", {"name": f"renamed {n}"}).status_code == 200
                users[uid] = f"renamed {n}"
            elif op == "delete" and others:
                uid = others[n % len(others)]
                assert client.delete(f"/api/users/{uid}").status_code == 204
                del users[uid]
            elif op == "settings":
                assert client.put("/api/settings", {"display_name": f"{tenant} {n}"}).status_code == 200
                display[tenant] = f"{tenant} {n}"
        for tenant in TENANTS:
            body = clients[tenant].get("/api/users?limit=1000").json()
            assert body["tenant"] == tenant
            assert {int(u["id"]): u["name"] for u in body["users"]} == model[tenant]
            assert body["count"] == len(model[tenant])
            assert clients[tenant].get("/api/settings").json()["settings"]["display_name"] == display[tenant]
        transaction.set_rollback(True)


def test_database_errors_inside_services_roll_back_the_whole_change(alice, monkeypatch):
    from core import audit

    def broken_record(*args, **kwargs):
        raise DatabaseError("audit store unavailable")

    monkeypatch.setattr(audit, "record", broken_record)
    client = JsonClient(
        tenant="acme", token=alice.defaults["HTTP_AUTHORIZATION"].split()[1], raise_request_exception=False
    )
    assert client.post("/api/users", {"name": "Never Saved"}).status_code == 500
    assert "Never Saved" not in str(alice.get("/api/users").json())
