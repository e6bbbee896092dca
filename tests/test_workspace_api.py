"""The tenant workspace API of SPEC 4: users, settings, roles, feature flags."""

import pytest
from django_tenants.utils import schema_context

from accounts.models import AuthToken, TenantUser, WorkspaceSettings
from tenants.models import Tenant
from tests.conftest import JsonClient

pytestmark = pytest.mark.django_db


def acme_users() -> list[tuple]:
    with schema_context("acme"):
        return list(TenantUser.objects.order_by("id").values_list("username", "name", "role", "email"))


# --- Users: read -----------------------------------------------------------------------------


def test_list_users_in_the_seed_shape(bob):
    body = bob.get("/api/users").json()
    assert body["tenant"] == "acme"
    assert body["count"] == 2
    assert [{k: u[k] for k in ("id", "name", "role")} for u in body["users"]] == [
        {"id": "1", "name": "Alice", "role": "admin"},
        {"id": "2", "name": "Bob", "role": "member"},
    ]
    assert body["users"][0]["username"] == "alice"


def test_users_are_per_tenant(charlie):
    body = charlie.get("/api/users").json()
    assert body == {
        "tenant": "globex",
        "users": [{"id": "1", "name": "Charlie", "role": "admin", "username": "charlie", "email": "", **_ts(body)}],
        "count": 1,
    }


def _ts(body):
    return {"created_at": body["users"][0]["created_at"]}


def test_list_users_paginates(alice):
    for n in range(3):
        assert alice.post("/api/users", {"name": f"Extra {n}"}).status_code == 201
    body = alice.get("/api/users?limit=2&offset=1").json()
    assert [u["name"] for u in body["users"]] == ["Bob", "Extra 0"]
    assert body["count"] == 5
    assert alice.get("/api/users?limit=abc").status_code == 400
    assert alice.get("/api/users?limit=100000").status_code == 400


def test_get_one_user(bob):
    assert bob.get("/api/users/1").json()["name"] == "Alice"


@pytest.mark.parametrize("user_id", ["99", "0", "abc", "-1", "1.5", "9" * 30])
def test_get_unknown_user(bob, user_id):
    response = bob.get(f"/api/users/{user_id}")
    assert response.status_code == 404
    assert response.json() == {"error": "User not found"}


# --- Users: write ------------------------------------------------------------------------------


def test_admin_creates_user_like_the_seed(alice):
    response = alice.post("/api/users", {"name": "Diana", "role": "member"})
    assert response.status_code == 201
    body = response.json()
    assert body["id"].isdigit() and int(body["id"]) > 2  # ids are per tenant and never reused
    assert alice.get(f"/api/users/{body['id']}").json() == body
    assert {k: body[k] for k in ("name", "role", "username")} == {
        "name": "Diana",
        "role": "member",
        "username": "diana",
    }
    assert acme_users()[-1] == ("diana", "Diana", "member", "")


def test_created_user_with_password_can_get_a_token(alice):
    created = alice.post(
        "/api/users", {"name": "Eve", "username": "eve", "password": "correct-horse-9", "email": "e@x.io"}
    ).json()
    response = JsonClient(tenant="acme").post("/api/auth/token", {"username": "eve", "password": "correct-horse-9"})
    assert response.status_code == 200
    token = response.json()["token"]
    me = JsonClient(tenant="acme", token=token).get(f"/api/users/{created['id']}")
    assert me.json()["email"] == "e@x.io"
    assert "password" not in me.json()


def test_usernames_are_derived_and_deduplicated(alice):
    first = alice.post("/api/users", {"name": "Alice"}).json()
    assert first["username"] == "alice2"


def test_duplicate_username_is_409(alice):
    response = alice.post("/api/users", {"name": "Other", "username": "bob"})
    assert response.status_code == 409
    assert response.json()["error"] == "Username 'bob' is taken"


def test_admin_patches_and_deletes_users(alice):
    response = alice.patch("/api/users/2", {"role": "admin", "name": "Robert"})
    assert response.status_code == 200
    assert response.json()["role"] == "admin" and response.json()["name"] == "Robert"
    assert alice.delete("/api/users/2").status_code == 204
    assert alice.get("/api/users/2").status_code == 404
    assert [u[0] for u in acme_users()] == ["alice"]


def test_password_change_revokes_tokens(alice, keys):
    assert alice.patch("/api/users/2", {"password": "brand-new-pass-1"}).status_code == 200
    assert JsonClient(tenant="acme", token=keys.bob).get("/api/me").status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/users", {"name": "Mallory"}),
        ("patch", "/api/users/1", {"role": "member"}),
        ("patch", "/api/users/2", {"name": "Self promotion", "role": "admin"}),
        ("delete", "/api/users/1", None),
        ("put", "/api/settings", {"display_name": "Bob's Corp"}),
        ("get", "/api/export", None),
    ],
)
def test_members_cannot_write(bob, method, path, body):
    before_users, before_settings = acme_users(), _acme_settings()
    response = getattr(bob, method)(path, body) if body is not None else getattr(bob, method)(path)
    assert response.status_code == 403
    assert response.json() == {"error": "Tenant admin role required"}
    assert acme_users() == before_users
    assert _acme_settings() == before_settings


def _acme_settings():
    with schema_context("acme"):
        return list(WorkspaceSettings.objects.values_list("display_name", "timezone", "theme_color"))


def test_last_admin_cannot_be_demoted_or_deleted(alice, charlie):
    response = alice.patch("/api/users/1", {"role": "member"})
    assert response.status_code == 409
    assert response.json()["error"] == "A tenant must keep at least one admin"
    assert alice.delete("/api/users/1").status_code == 409
    assert charlie.delete("/api/users/1").status_code == 409
    # With a second admin, the first may step down.
    assert alice.patch("/api/users/2", {"role": "admin"}).status_code == 200
    assert alice.patch("/api/users/1", {"role": "member"}).status_code == 200


BAD_USER_BODIES = [
    "not json",
    "[1, 2]",
    "null",
    "{}",
    '{"name": ""}',
    '{"name": "   "}',
    '{"name": 12}',
    '{"name": null}',
    '{"name": "' + "n" * 10_000 + '"}',
    '{"name": "Ok", "role": "owner"}',
    '{"name": "Ok", "role": 1}',
    '{"name": "Ok", "is_admin": true}',
    '{"name": "Ok", "email": "not-an-email"}',
    '{"name": "Ok", "username": "Has Spaces"}',
    '{"name": "Ok", "password": "short"}',
    '{"name": "Ok", "password": 12345678}',
]


@pytest.mark.parametrize("body", BAD_USER_BODIES)
def test_bad_create_bodies(alice, body):
    before = acme_users()
    response = alice.post("/api/users", body)
    assert 400 <= response.status_code < 500, response.content
    assert isinstance(response.json()["error"], str)
    assert acme_users() == before


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1]",
        "{}",
        '{"name": ""}',
        '{"name": 5}',
        '{"role": "owner"}',
        '{"name": "' + "n" * 10_000 + '"}',
        '{"username": "renamed"}',
        '{"id": "7"}',
    ],
)
def test_bad_patch_bodies(alice, body):
    before = acme_users()
    response = alice.patch("/api/users/2", body)
    assert response.status_code == 400, response.content
    assert isinstance(response.json()["error"], str)
    assert acme_users() == before


def test_field_errors_name_the_field(alice):
    body = alice.post("/api/users", {"name": "Ok", "role": "owner"}).json()
    assert body["error"].startswith("Invalid role:")
    assert "role" in body["detail"]


# --- Settings ----------------------------------------------------------------------------------


def test_get_settings(bob):
    assert bob.get("/api/settings").json() == {
        "tenant": "acme",
        "settings": {
            "max_users": 100,
            "features": ["analytics", "api", "export"],
            "rate_limit_per_minute": 600,
            "requests_per_month": None,
            "display_name": "Acme Corporation",
            "timezone": "UTC",
            "theme_color": "#2563eb",
        },
    }


def test_admin_updates_editable_settings(alice, bob):
    response = alice.put(
        "/api/settings", {"display_name": "ACME", "timezone": "Europe/Paris", "theme_color": "#FF0000"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["updated"] is True
    assert body["settings"]["display_name"] == "ACME"
    assert body["settings"]["timezone"] == "Europe/Paris"
    assert body["settings"]["theme_color"] == "#ff0000"
    assert bob.get("/api/settings").json()["settings"]["timezone"] == "Europe/Paris"
    # A partial update keeps the other keys, like the seed's dict update.
    alice.put("/api/settings", {"theme_color": "#00ff00"})
    assert bob.get("/api/settings").json()["settings"]["display_name"] == "ACME"


def test_settings_are_per_tenant(alice, charlie):
    alice.put("/api/settings", {"display_name": "Only Acme"})
    assert charlie.get("/api/settings").json()["settings"]["display_name"] == "Globex Inc."


@pytest.mark.parametrize(
    ("key", "value"), [("max_users", 1000), ("features", ["analytics", "export"]), ("rate_limit_per_minute", 99999)]
)
def test_plan_governed_settings_are_read_only_to_tenants(charlie, key, value):
    response = charlie.put("/api/settings", {key: value})
    assert response.status_code == 403
    assert response.json()["error"] == f"Setting '{key}' is governed by the plan; only the platform can change it"
    assert charlie.get("/api/settings").json()["settings"]["max_users"] == 10
    assert charlie.get("/api/settings").json()["settings"]["features"] == ["api"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": 5}, "timezone"),
        ({"theme_color": "red"}, "theme_color"),
        ({"theme_color": "#12345"}, "theme_color"),
        ({"theme_color": "#gggggg"}, "theme_color"),
        ({"display_name": "x" * 101}, "display_name"),
        ({"colour": "#ffffff"}, "colour"),
    ],
)
def test_invalid_settings_name_the_field(alice, body, field):
    response = alice.put("/api/settings", body)
    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert field in response.json()["error"]
    assert _acme_settings() in ([], [("", "UTC", "#2563eb")])


@pytest.mark.parametrize("body", ["not json", "[1]", "{}", '"x"'])
def test_bad_settings_bodies(alice, body):
    assert alice.put("/api/settings", body).status_code == 400


# --- Feature flags -----------------------------------------------------------------------------


def test_export_on_enterprise(alice):
    body = alice.get("/api/export").json()
    assert body["id"] == "acme"
    assert body["settings"]["max_users"] == 100
    assert [u["name"] for u in body["users"]] == ["Alice", "Bob"]


def test_analytics_on_enterprise(bob):
    body = bob.get("/api/analytics").json()
    assert body["users_by_role"] == {"admin": 1, "member": 1}
    assert sum(day["count"] for day in body["users_created_per_day"]) == 2
    assert body["total_users"] == 2


@pytest.mark.parametrize("feature", ["export", "analytics"])
def test_features_missing_on_starter(charlie, feature):
    response = charlie.get(f"/api/{feature}")
    assert response.status_code == 403
    assert response.json() == {"error": f"Feature '{feature}' is not enabled on the starter plan"}


def test_feature_follows_a_platform_override(staff, charlie):
    assert staff.patch("/admin/tenants/globex", {"features": ["api", "export"]}).status_code == 200
    assert charlie.get("/api/export").status_code == 200
    assert charlie.get("/api/analytics").status_code == 403


# --- Platform control of plans -----------------------------------------------------------------


def test_platform_changes_plan_and_limits_follow(staff, charlie):
    response = staff.patch("/admin/tenants/globex", {"plan": "enterprise"})
    assert response.status_code == 200
    assert response.json()["settings"] == {"max_users": 100, "features": ["analytics", "api", "export"]}
    assert charlie.get("/api/settings").json()["settings"]["rate_limit_per_minute"] == 600
    staff.patch("/admin/tenants/globex", {"plan": "starter", "max_users": 25})
    assert charlie.get("/api/settings").json()["settings"]["max_users"] == 25
    staff.patch("/admin/tenants/globex", {"max_users": None})
    assert charlie.get("/api/settings").json()["settings"]["max_users"] == 10


def test_lowering_the_limit_blocks_new_users(staff, alice):
    staff.patch("/admin/tenants/acme", {"max_users": 2})
    response = alice.post("/api/users", {"name": "Nope"})
    assert response.status_code == 403
    assert response.json() == {"error": "User limit reached (2 users on enterprise plan)"}
    staff.patch("/admin/tenants/acme", {"max_users": 3})
    assert alice.post("/api/users", {"name": "Yes"}).status_code == 201


def test_user_limit_message_on_starter(staff, charlie):
    for n in range(9):
        assert charlie.post("/api/users", {"name": f"Hire {n}"}).status_code == 201
    response = charlie.post("/api/users", {"name": "One too many"})
    assert response.status_code == 403
    assert response.json() == {"error": "User limit reached (10 users on starter plan)"}
    assert staff.get("/admin/tenants/globex").json()["user_count"] == 10


@pytest.mark.parametrize(
    "body",
    [
        "{}",
        "[1]",
        '{"plan": "platinum"}',
        '{"max_users": -1}',
        '{"max_users": "10"}',
        '{"max_users": true}',
        '{"features": "api"}',
        '{"features": [1]}',
        '{"active": false}',
        '{"id": "renamed"}',
    ],
)
def test_bad_platform_patches(staff, body):
    response = staff.patch("/admin/tenants/globex", body)
    assert response.status_code == 400, response.content
    tenant = Tenant.objects.get(pk="globex")
    assert (tenant.plan_id, tenant.max_users_override, tenant.features_override, tenant.active) == (
        "starter",
        None,
        None,
        True,
    )


def test_patch_unknown_tenant(staff):
    assert staff.patch("/admin/tenants/nope", {"name": "x"}).status_code == 404


def test_tenants_cannot_patch_themselves(keys):
    response = JsonClient(token=keys.charlie, tenant="globex").patch("/admin/tenants/globex", {"max_users": 1000})
    assert response.status_code == 401
    assert Tenant.objects.get(pk="globex").max_users_override is None


# --- A first admin for a new tenant ------------------------------------------------------------


def test_create_tenant_with_first_admin(staff):
    response = staff.post(
        "/admin/tenants",
        {
            "id": "initech",
            "name": "Initech LLC",
            "admin": {"username": "bill", "name": "Bill", "password": "tps-reports-42", "email": "bill@initech.io"},
        },
    )
    assert response.status_code == 201
    assert "tps-reports-42" not in response.content.decode()
    token = JsonClient(tenant="initech").post("/api/auth/token", {"username": "bill", "password": "tps-reports-42"})
    assert token.status_code == 200
    users = JsonClient(tenant="initech", token=token.json()["token"]).get("/api/users").json()
    assert [(u["username"], u["role"]) for u in users["users"]] == [("bill", "admin")]


@pytest.mark.parametrize(
    "admin",
    [
        {"username": "bill", "name": "Bill", "password": "short"},
        {"username": "Bill Lumbergh", "name": "Bill", "password": "tps-reports-42"},
        {"username": "bill", "password": "tps-reports-42"},
        {"username": "bill", "name": "Bill", "password": "tps-reports-42", "role": "member"},
        "bill",
    ],
)
def test_bad_first_admin_leaves_no_tenant(staff, admin):
    from tests.conftest import schema_exists

    response = staff.post("/admin/tenants", {"id": "initech", "name": "Initech", "admin": admin})
    assert response.status_code == 400, response.content
    assert "tps-reports-42" not in response.content.decode()
    assert not Tenant.objects.filter(pk="initech").exists()
    assert not schema_exists("initech")


# --- Tokens ------------------------------------------------------------------------------------


def test_token_login_failures():
    client = JsonClient(tenant="acme")
    assert client.post("/api/auth/token", {"username": "alice", "password": "wrong"}).status_code == 401
    assert client.post("/api/auth/token", {"username": "charlie", "password": "demo-pass-2024"}).status_code == 401
    assert client.post("/api/auth/token", {"username": "admin", "password": "demo-pass-2024"}).status_code == 401
    assert client.post("/api/auth/token", {"username": "alice"}).status_code == 400
    assert client.post("/api/auth/token", "garbage").status_code == 400


def test_tenant_token_revocation_and_hashing():
    client = JsonClient(tenant="acme")
    token = client.post("/api/auth/token", {"username": "bob", "password": "demo-pass-2024"}).json()["token"]
    with schema_context("acme"):
        assert not AuthToken.objects.filter(key_digest=token).exists()
    authed = JsonClient(tenant="acme", token=token)
    assert authed.get("/api/me").status_code == 200
    assert authed.delete("/api/auth/token").status_code == 204
    assert authed.get("/api/me").status_code == 401


@pytest.mark.parametrize(
    "query", ["offset=99999999999999999999", "offset=²", "limit=²", "limit=1000000000000000000000"]
)
def test_out_of_range_pagination_is_400(bob, staff, query):
    for client, path in ((bob, "/api/users"), (bob, "/api/events"), (staff, "/admin/tenants")):
        response = client.get(f"{path}?{query}")
        assert response.status_code in (400, 403), (path, response.content)
        assert "error" in response.json()


@pytest.mark.parametrize("user_id", ["²", "١٢", "1e3"])
def test_unicode_digit_ids_are_404(bob, user_id):
    assert bob.get(f"/api/users/{user_id}").status_code == 404
