"""Tenant API keys (SPEC 8): created by tenant admins, naming their tenant by themselves, scoped, revocable."""

from __future__ import annotations

import datetime
import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from accounts import keys as key_module
from accounts import services
from accounts.models import ApiKey, TenantUser
from core.models import AuditEvent, digest
from tenants.models import Tenant
from tests.conftest import JsonClient

pytestmark = pytest.mark.django_db

INVALID = {"error": "Invalid API key"}


def secret_of(raw_key: str) -> str:
    """The part of a key after its public prefix (tk_<tenant>_<key id>_)."""
    return raw_key.split("_", 3)[3]


def bearer(key: str, **options) -> JsonClient:
    return JsonClient(HTTP_AUTHORIZATION=f"Bearer {key}", **options)


def new_key(tenant_id: str = "acme", scopes=("read",), **options) -> str:
    with schema_context(tenant_id):
        _, raw_key = services.create_api_key(
            Tenant.objects.get(pk=tenant_id), name="script", scopes=list(scopes), **options
        )
    return raw_key


# --- Creating, listing, revoking ---------------------------------------------------------------


def test_admin_creates_lists_and_revokes_a_key(alice):
    created = alice.post("/api/keys", {"name": "CI", "scopes": ["read", "write"], "expires_in_days": 30})
    assert created.status_code == 201, created.content
    body = created.json()
    assert set(body) == {"id", "name", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "key"}
    raw_key = body["key"]
    assert raw_key.startswith(f"{body['prefix']}_") and body["prefix"].startswith("tk_acme_")
    assert body["scopes"] == ["read", "write"] and body["last_used_at"] is None
    assert 29 * 86400 < body["expires_at"] - body["created_at"] <= 30 * 86400

    listed = alice.get("/api/keys").json()
    assert listed["tenant"] == "acme" and listed["count"] == 1
    assert listed["keys"] == [{key: value for key, value in body.items() if key != "key"}]

    assert bearer(raw_key).get("/api/me").json()["id"] == "acme"
    assert alice.delete(f"/api/keys/{body['id']}").status_code == 204
    assert alice.get("/api/keys").json()["count"] == 0
    refused = bearer(raw_key).get("/api/me")
    assert (refused.status_code, refused.json()) == (401, INVALID)
    assert alice.delete(f"/api/keys/{body['id']}").status_code == 404


def test_key_input_is_validated(alice):
    for bad in (
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "scopes": "read"},
        {"name": "x", "scopes": ["read", "read"]},
        {"name": "x", "scopes": ["read"], "expires_in_days": 0},
        {"name": "x", "scopes": ["read"], "expires_in_days": "30"},
        {"name": "", "scopes": ["read"]},
        {"scopes": ["read"]},
        {"name": "x", "scopes": ["read"], "key": "tk_mine"},
    ):
        response = alice.post("/api/keys", bad)
        assert response.status_code == 400, bad
        assert "error" in response.json()
    with schema_context("acme"):
        assert not ApiKey.objects.exists()


def test_members_cannot_manage_keys(bob, alice):
    assert bob.post("/api/keys", {"name": "mine", "scopes": ["read"]}).status_code == 403
    assert bob.get("/api/keys").json() == {"error": "Tenant admin role required"}
    key_id = alice.post("/api/keys", {"name": "theirs", "scopes": ["read"]}).json()["id"]
    assert bob.delete(f"/api/keys/{key_id}").status_code == 403
    with schema_context("acme"):
        assert ApiKey.objects.filter(pk=key_id).exists()


def test_keys_are_stored_hashed(alice):
    body = alice.post("/api/keys", {"name": "stored", "scopes": ["read"]}).json()
    with schema_context("acme"):
        row = ApiKey.objects.get(pk=body["id"])
    assert row.key_digest == digest(body["key"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(k)::text FROM acme.accounts_apikey k")
        stored = " ".join(row[0] for row in cursor.fetchall())
    assert body["key"] not in stored and secret_of(body["key"]) not in stored


def test_the_secret_never_appears_after_creation(alice, caplog):
    caplog.set_level(logging.DEBUG)
    body = alice.post("/api/keys", {"name": "secret", "scopes": ["read", "write"]}).json()
    raw_key, secret = body["key"], secret_of(body["key"])
    caplog.clear()
    client = bearer(raw_key)
    answers = [
        client.get("/api/me"),
        client.post("/api/users", {"name": "Made By Key"}),
        client.get("/api/keys"),
        client.get("/api/events"),
        alice.get("/api/keys"),
        alice.get("/api/events"),
        JsonClient(token=None, HTTP_X_API_KEY=raw_key).get("/api/nope"),
        JsonClient(host="globex.localhost", HTTP_X_API_KEY=raw_key).get("/api/me"),
        alice.delete(f"/api/keys/{body['id']}"),
        client.get("/api/me"),
    ]
    for response in answers:
        assert secret not in response.content.decode()
        assert secret not in str(response.headers)
    assert caplog.records, "the request log should have written something"
    assert secret not in caplog.text
    with schema_context("acme"):
        trail = " ".join(str(row) for row in AuditEvent.objects.values_list("actor", "target", "before", "after"))
    assert secret not in trail and body["prefix"] in trail


# --- A key names its tenant -----------------------------------------------------------------------


def test_a_key_alone_reaches_its_tenant_on_the_public_host():
    raw_key = new_key("globex")
    for client in (bearer(raw_key), JsonClient(HTTP_X_API_KEY=raw_key), bearer(raw_key, host="127.0.0.1")):
        response = client.get("/api/users")
        assert response.status_code == 200, response.content
        assert response.json()["tenant"] == "globex"
        assert [user["username"] for user in response.json()["users"]] == ["charlie"]


def test_a_key_on_its_own_tenants_host_or_header_is_accepted():
    raw_key = new_key("acme")
    assert bearer(raw_key, host="acme.localhost").get("/api/me").json()["id"] == "acme"
    assert bearer(raw_key, tenant="acme").get("/api/me").json()["id"] == "acme"
    assert bearer(raw_key, host="acme.localhost", tenant="acme").get("/api/me").status_code == 200


@pytest.mark.parametrize(
    "options",
    [{"host": "globex.localhost"}, {"tenant": "globex"}, {"host": "globex.localhost", "tenant": "globex"}],
    ids=["host", "header", "host-and-header"],
)
@pytest.mark.parametrize("header", ["bearer", "x-api-key"])
def test_a_key_is_refused_on_another_tenant(options, header):
    raw_key = new_key("acme", scopes=("read", "write"))
    client = bearer(raw_key, **options) if header == "bearer" else JsonClient(HTTP_X_API_KEY=raw_key, **options)
    for response in (client.get("/api/users"), client.post("/api/users", {"name": "Intruder"})):
        assert (response.status_code, response.json()) == (401, INVALID)
    with schema_context("globex"):
        assert not TenantUser.objects.filter(name="Intruder").exists()


def test_a_key_of_an_unknown_or_suspended_tenant():
    raw_key = new_key("globex")
    forged = raw_key.replace("tk_globex_", "tk_initech_")
    assert (bearer(forged).get("/api/me").status_code, bearer(forged).get("/api/me").json()) == (401, INVALID)
    Tenant.objects.filter(pk="globex").update(active=False)
    assert bearer(raw_key).get("/api/me").json() == {"error": "Tenant account is suspended"}


def test_a_key_moved_to_another_tenant_id_is_refused():
    """The tenant in the key is part of what is hashed: rewriting it finds no key."""
    raw_key = new_key("globex")
    with schema_context("globex"):
        key_id = ApiKey.objects.get().key_id
    with schema_context("acme"):
        # Even a key with the same id in acme's schema does not match a rewritten key.
        ApiKey.objects.create(key_id=key_id, key_digest=digest("other"), prefix="x", scopes=["read"])
    moved = raw_key.replace("tk_globex_", "tk_acme_")
    assert bearer(moved).get("/api/me").status_code == 401


# --- Bad keys ---------------------------------------------------------------------------------------


def bad_keys(good: str) -> dict[str, str]:
    secret = secret_of(good)
    return {
        "wrong secret": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "wrong prefix": "sk_" + good[3:],
        "no prefix": secret,
        "malformed id": good.replace("_", "_zz", 2),
        "truncated": good[:-1],
        "extra": good + "x",
        "empty": "",
        "spaces": "   ",
        "10 KB": good + "A" * 10_240,
        "non-ascii": good[:-1] + "é",
        "user token format": "0" * 43,
    }


@pytest.mark.parametrize("case", list(bad_keys("tk_acme_0123456789ab_" + "A" * 43)))
@pytest.mark.parametrize("where", ["bearer", "x-api-key", "bearer+header", "x-api-key+host"])
def test_bad_keys_are_401(case, where):
    raw = bad_keys(new_key("acme"))[case]
    if where == "bearer":
        client = bearer(raw)
    elif where == "x-api-key":
        client = JsonClient(HTTP_X_API_KEY=raw)
    elif where == "bearer+header":
        client = bearer(raw, tenant="acme")
    else:
        client = JsonClient(host="acme.localhost", HTTP_X_API_KEY=raw)
    response = client.get("/api/users")
    assert (response.status_code, response.json()) == (401, INVALID)


def test_an_expired_key_is_401():
    raw_key = new_key("acme", expires_in_days=1)
    assert bearer(raw_key).get("/api/me").status_code == 200
    with schema_context("acme"):
        ApiKey.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    response = bearer(raw_key).get("/api/me")
    assert (response.status_code, response.json()) == (401, INVALID)


def test_a_revoked_key_is_401():
    raw_key = new_key("acme")
    with schema_context("acme"):
        services.revoke_api_key(ApiKey.objects.get().pk)
    assert bearer(raw_key).get("/api/me").json() == INVALID


# --- Scopes against every route -----------------------------------------------------------------

READ, WRITE, BOTH = ("read",), ("write",), ("read", "write")
ALL_SCOPES = (READ, WRITE, BOTH)


def routes(victim_id: str, key_pk: str, job_id: str) -> list[tuple[str, str, dict | None, dict]]:
    """Every tenant operation: method, path, body, and the status expected for each scope."""
    read_ok = {READ: 200, WRITE: 200, BOTH: 200}
    write_only = {READ: 403, WRITE: 200, BOTH: 200}
    never = {READ: 403, WRITE: 403, BOTH: 403}
    return [
        ("GET", "/api/me", None, read_ok),
        ("GET", "/api/settings", None, read_ok),
        ("PUT", "/api/settings", {"display_name": "By key"}, write_only),
        ("GET", "/api/users", None, read_ok),
        ("POST", "/api/users", {"name": "By Key"}, {READ: 403, WRITE: 201, BOTH: 201}),
        ("GET", f"/api/users/{victim_id}", None, read_ok),
        ("PATCH", f"/api/users/{victim_id}", {"name": "Renamed"}, write_only),
        ("DELETE", f"/api/users/{victim_id}", None, {READ: 403, WRITE: 204, BOTH: 204}),
        ("GET", "/api/export", None, read_ok),
        ("GET", "/api/analytics", None, read_ok),
        ("GET", "/api/events", None, read_ok),
        ("GET", "/api/usage", None, read_ok),
        ("GET", "/api/exports", None, read_ok),
        ("POST", "/api/exports", None, {READ: 403, WRITE: 202, BOTH: 202}),
        ("GET", f"/api/exports/{job_id}", None, read_ok),
        # Let through by every scope, and answered about the job itself: no worker ran it yet.
        ("GET", f"/api/exports/{job_id}/download", None, {READ: 409, WRITE: 409, BOTH: 409}),
        ("GET", "/api/keys", None, never),
        ("POST", "/api/keys", {"name": "child", "scopes": ["write"]}, never),
        ("DELETE", f"/api/keys/{key_pk}", None, never),
        # Token routes belong to people: a key holds no user token (401: no user credentials).
        ("DELETE", "/api/auth/token", None, {READ: 401, WRITE: 401, BOTH: 401}),
        ("POST", "/api/auth/token", {"username": "alice", "password": "wrong-password"}, {s: 401 for s in ALL_SCOPES}),
    ]


@pytest.mark.parametrize("scopes", ALL_SCOPES, ids=["read", "write", "read+write"])
def test_every_scope_against_every_route(scopes):
    raw_key = new_key("acme", scopes=scopes)
    with schema_context("acme"):
        acme = Tenant.objects.get(pk="acme")
        victim = services.create_user(acme, name="Victim", username="victim")
        key_pk = str(ApiKey.objects.get().pk)
        job = services.request_workspace_export(acme)
    client = bearer(raw_key)
    for method, path, body, expected in routes(str(victim.pk), key_pk, str(job.pk)):
        response = getattr(client, method.lower())(path, body) if body else getattr(client, method.lower())(path)
        assert response.status_code == expected[scopes], (method, path, response.content)
    with schema_context("acme"):
        assert ApiKey.objects.count() == 1  # no key made or revoked by a key
        assert TenantUser.objects.filter(username="victim").exists() == (scopes == READ)


def test_the_route_table_covers_every_tenant_operation(anon):
    schema = anon.get("/api/schema/?format=json").json()
    documented = {
        (method.upper(), path.replace("{user_id}", "1").replace("{key_id}", "2").replace("{job_id}", "3"))
        for path, item in schema["paths"].items()
        if path.startswith("/api/")
        for method in item
    }
    tested = {(method, path) for method, path, _, _ in routes("1", "2", "3")}
    # The JWT sign-in routes take a key as a credential, not as a caller: see tests/test_jwt.py.
    assert documented - tested == {("POST", "/api/auth/jwt"), ("POST", "/api/auth/jwt/refresh")}


def test_a_key_never_reaches_the_platform_api():
    raw_key = new_key("acme", scopes=BOTH)
    for client in (bearer(raw_key), JsonClient(HTTP_X_API_KEY=raw_key)):
        for method, path in (
            ("get", "/admin/tenants"),
            ("get", "/admin/tenants/acme"),
            ("put", "/admin/tenants/acme/suspend"),
        ):
            assert getattr(client, method)(path).status_code == 401
    assert Tenant.objects.get(pk="acme").active


def test_audit_events_name_the_key():
    raw_key = new_key("acme", scopes=WRITE)
    with schema_context("acme"):
        prefix = ApiKey.objects.get().prefix
    created = bearer(raw_key).post("/api/users", {"name": "Keyed"}).json()
    with schema_context("acme"):
        event = AuditEvent.objects.get(action="user.create", target=f"user:{created['id']}")
    assert (event.actor_kind, event.actor) == ("key", prefix)
    events = bearer(raw_key).get("/api/events").json()["events"]
    assert events[0]["actor"] == {"kind": "key", "name": prefix}


# --- last_used_at ---------------------------------------------------------------------------------


def test_last_used_is_written_at_most_once_a_minute(monkeypatch):
    raw_key = new_key("acme")
    clock = [1_000_000.0]
    monkeypatch.setattr(key_module.time, "monotonic", lambda: clock[0])
    client = bearer(raw_key)

    def updates_of_one_request() -> list[str]:
        with CaptureQueriesContext(connection) as context:
            assert client.get("/api/me").status_code == 200
        return [q["sql"] for q in context.captured_queries if q["sql"].startswith("UPDATE") and "apikey" in q["sql"]]

    assert len(updates_of_one_request()) == 1
    with schema_context("acme"):
        first = ApiKey.objects.get().last_used_at
    assert first is not None
    clock[0] += 59
    assert updates_of_one_request() == []
    clock[0] += 2
    assert len(updates_of_one_request()) == 1
    with schema_context("acme"):
        assert ApiKey.objects.get().last_used_at > first


# --- The dashboard -------------------------------------------------------------------------------

FORM = "multipart/form-data"


def test_the_dashboard_creates_shows_once_lists_and_revokes_keys():
    from tests.test_pages import signed_in

    client = signed_in("alice")
    response = client.post("/keys", {"name": "Zapier", "scopes": ["read", "write"], "expires_in_days": "7"}, FORM)
    assert response.status_code == 200
    text = response.content.decode()
    with schema_context("acme"):
        key = ApiKey.objects.get()
    raw_key = text.split('id="new-key-value" value="', 1)[1].split('"', 1)[0]
    assert key.key_digest == digest(raw_key)
    assert 'id="copy-key"' in text and response["Cache-Control"] == "no-store"
    assert bearer(raw_key).get("/api/me").status_code == 200

    listing = client.get("/").content.decode()
    assert secret_of(raw_key) not in listing
    row = listing.split(f'data-key="{key.prefix}"', 1)[1].split("</tr>", 1)[0]
    assert "Zapier" in row and "read" in row and "write" in row
    dates = [cell.split("</td>")[0] for cell in row.split("<td>")[4:7]]
    assert dates[1] == key.expires_at.strftime("%Y-%m-%d %H:%M"), row  # expires
    assert dates[2] != "never"  # last used: by the request above

    bad = client.post("/keys", {"name": "x", "expires_in_days": "7"}, FORM)
    assert bad.status_code == 400 and "Invalid scopes" in bad.content.decode()

    assert client.post(f"/keys/{key.pk}/revoke", {}, FORM).status_code == 302
    assert bearer(raw_key).get("/api/me").status_code == 401
    assert "No API keys yet." in client.get("/").content.decode()


def test_members_see_no_keys_on_the_dashboard():
    from tests.test_pages import signed_in

    new_key("acme")
    client = signed_in("bob")
    assert "API keys" not in client.get("/").content.decode()
    assert client.post("/keys", {"name": "x", "scopes": ["read"]}, FORM).status_code == 403
    with schema_context("acme"):
        assert ApiKey.objects.count() == 1
