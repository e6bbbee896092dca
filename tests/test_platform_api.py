"""The platform API of SPEC 5: list, detail, create with provisioning, suspend, activate."""

import pytest
from django.contrib.auth import get_user_model
from django_tenants.utils import schema_context

from accounts import services as account_services
from tenants.models import Domain, Tenant
from tests.conftest import JsonClient, schema_exists

pytestmark = pytest.mark.django_db


def test_list_tenants_in_the_seed_shape(staff):
    response = staff.get("/admin/tenants")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert body["tenants"] == [
        {
            "id": "acme",
            "name": "Acme Corporation",
            "plan": "enterprise",
            "active": True,
            "created_at": 1700000000,
            "settings": {"max_users": 100, "features": ["analytics", "api", "export"]},
        },
        {
            "id": "globex",
            "name": "Globex Inc.",
            "plan": "starter",
            "active": True,
            "created_at": 1700100000,
            "settings": {"max_users": 10, "features": ["api"]},
        },
    ]


def test_list_paginates_with_total_count(staff):
    body = staff.get("/admin/tenants?limit=1&offset=1").json()
    assert [t["id"] for t in body["tenants"]] == ["globex"]
    assert body["count"] == 2
    assert staff.get("/admin/tenants?limit=0").status_code == 400
    assert staff.get("/admin/tenants?offset=-1").status_code == 400


def test_detail_has_user_count(staff):
    body = staff.get("/admin/tenants/acme").json()
    assert body["user_count"] == 2
    assert body["domains"] == ["acme.localhost"]
    assert staff.get("/admin/tenants/globex").json()["user_count"] == 1


@pytest.mark.parametrize("path", ["/admin/tenants/nope", "/admin/tenants/Bad;Id", "/admin/tenants/" + "x" * 80])
def test_detail_of_unknown_tenant(staff, path):
    response = staff.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "Tenant not found"}


def test_create_provisions_schema_and_domain(staff):
    response = staff.post("/admin/tenants", {"id": "initech", "name": "Initech LLC", "plan": "starter"})
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == "initech"
    assert body["name"] == "Initech LLC"
    assert body["plan"] == "starter"
    assert body["active"] is True
    assert isinstance(body["created_at"], int)
    assert body["settings"] == {"max_users": 10, "features": ["api"]}

    assert schema_exists("initech")
    assert Domain.objects.get(domain="initech.localhost").tenant_id == "initech"
    # The schema is fully migrated: a user and a token can live in it, and the tenant answers.
    with schema_context("initech"):
        user = account_services.create_user(Tenant.objects.get(pk="initech"), username="ina", name="Ina", role="admin")
        key = account_services.issue_token(user)
    by_header = JsonClient(tenant="initech", token=key).get("/api/me")
    by_host = JsonClient(host="initech.localhost", token=key).get("/api/me")
    assert by_header.status_code == by_host.status_code == 200
    assert by_host.json()["id"] == "initech"
    assert staff.get("/admin/tenants/initech").json()["user_count"] == 1


def test_create_defaults_to_starter(staff):
    response = staff.post("/admin/tenants", {"id": "hooli", "name": "Hooli"})
    assert response.status_code == 201
    assert response.json()["plan"] == "starter"


def test_create_enterprise_gets_its_plan_values(staff):
    response = staff.post("/admin/tenants", {"id": "umbrella", "name": "Umbrella", "plan": "enterprise"})
    assert response.json()["settings"] == {"max_users": 100, "features": ["analytics", "api", "export"]}


def test_duplicate_create_is_409(staff):
    response = staff.post("/admin/tenants", {"id": "acme", "name": "Another Acme"})
    assert response.status_code == 409
    assert response.json() == {"error": "Tenant already exists"}
    assert Tenant.objects.get(pk="acme").name == "Acme Corporation"


@pytest.mark.parametrize(
    "tenant_id",
    [
        "Public",
        "public",
        "www",
        "admin",
        "api",
        "pg_x",
        "pg-x",
        "a b",
        "acme;drop",
        "x" * 64,
        "ünïcode",
        "",
        "1abc",
        "-abc",
        "abc-",
        "a_b",
        'a"b',
        "template",
    ],
)
def test_invalid_or_reserved_ids_are_refused(staff, tenant_id):
    response = staff.post("/admin/tenants", {"id": tenant_id, "name": "X"})
    assert response.status_code == 400
    assert "error" in response.json()
    assert not Tenant.objects.filter(pk=tenant_id).exists()
    assert Tenant.objects.count() == 2
    if tenant_id != "public":
        assert not schema_exists(tenant_id)


def test_longest_valid_id_is_accepted(staff):
    tenant_id = "a" * 63
    assert staff.post("/admin/tenants", {"id": tenant_id, "name": "Long"}).status_code == 201
    assert schema_exists(tenant_id)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1, 2]",
        '"a string"',
        "{}",
        '{"id": "okid"}',
        '{"name": "No id"}',
        '{"id": 5, "name": "x"}',
        '{"id": "okid", "name": 7}',
        '{"id": "okid", "name": ""}',
        '{"id": "okid", "name": "   "}',
        '{"id": "okid", "name": "' + "n" * 10_000 + '"}',
        '{"id": "okid", "name": "x", "plan": "platinum"}',
        '{"id": "okid", "name": "x", "plan": 1}',
        '{"id": "okid", "name": "x", "color": "red"}',
        '{"id": "okid", "name": "x", "settings": {"max_users": 1000}}',
    ],
)
def test_bad_create_bodies_are_400_and_write_nothing(staff, body):
    response = staff.post("/admin/tenants", body)
    assert response.status_code == 400, response.content
    assert isinstance(response.json()["error"], str)
    assert not Tenant.objects.filter(pk="okid").exists()
    assert not schema_exists("okid")


def test_wrong_content_type_is_415(staff):
    response = staff.post("/admin/tenants", "id=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "error" in response.json()


def test_wrong_method_is_405(staff):
    response = staff.delete("/admin/tenants/acme")
    assert response.status_code == 405
    assert response.json() == {"error": 'Method "DELETE" not allowed.'}
    assert staff.get("/admin/tenants/acme/suspend").status_code == 405


def test_body_too_large_is_413(staff, settings):
    response = staff.post("/admin/tenants", {"id": "big", "name": "x" * (300 * 1024)})
    assert response.status_code == 413
    assert response.json()["error"].startswith("Request body too large")


def test_suspend_and_activate(staff, keys):
    charlie = JsonClient(tenant="globex", token=keys.charlie)
    assert staff.put("/admin/tenants/globex/suspend").json() == {"suspended": True, "tenant": "globex"}
    assert Tenant.objects.get(pk="globex").active is False
    assert charlie.get("/api/me").status_code == 403
    assert staff.get("/admin/tenants/globex").json()["active"] is False

    assert staff.put("/admin/tenants/globex/activate").json() == {"activated": True, "tenant": "globex"}
    assert charlie.get("/api/me").status_code == 200


@pytest.mark.parametrize("action", ["suspend", "activate"])
def test_suspend_activate_unknown_tenant(staff, action):
    response = staff.put(f"/admin/tenants/nope/{action}")
    assert response.status_code == 404
    assert response.json() == {"error": "Tenant not found"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/admin/tenants", None),
        ("post", "/admin/tenants", {"id": "slashy", "name": "Slashy"}),
        ("get", "/admin/tenants/acme", None),
        ("put", "/admin/tenants/acme/suspend", None),
        ("put", "/admin/tenants/acme/activate", None),
    ],
)
@pytest.mark.parametrize("slash", ["", "/"])
def test_every_route_with_and_without_trailing_slash(staff, method, path, body, slash):
    call = getattr(staff, method)
    response = call(path + slash, body) if body is not None else call(path + slash)
    assert response.status_code in (200, 201), (path + slash, response.content)


@pytest.mark.parametrize("slash", ["", "/"])
def test_token_endpoint_and_tenant_api_with_and_without_slash(slash, alice):
    response = JsonClient().post("/admin/auth/token" + slash, {"username": "admin", "password": "demo-pass-2024"})
    assert response.status_code == 200
    assert alice.get("/api/me" + slash).status_code == 200


# --- Who may use the platform API ----------------------------------------------------------


PLATFORM_CALLS = [
    ("get", "/admin/tenants"),
    ("post", "/admin/tenants"),
    ("get", "/admin/tenants/acme"),
    ("put", "/admin/tenants/acme/suspend"),
    ("put", "/admin/tenants/acme/activate"),
]


@pytest.mark.parametrize(("method", "path"), PLATFORM_CALLS)
def test_anonymous_is_401(method, path):
    response = getattr(JsonClient(), method)(path)
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication credentials were not provided."}


@pytest.mark.parametrize(("method", "path"), PLATFORM_CALLS)
def test_bad_token_is_401(method, path):
    response = getattr(JsonClient(token="not-a-real-token"), method)(path)
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid token"}


@pytest.mark.parametrize(("method", "path"), PLATFORM_CALLS)
def test_tenant_users_token_is_refused(method, path, keys):
    body = {"id": "sneaky", "name": "x"} if method == "post" else None
    for client in (JsonClient(token=keys.alice), JsonClient(token=keys.alice, tenant="acme")):
        response = getattr(client, method)(path, body)
        assert response.status_code in (401, 403)
    assert Tenant.objects.get(pk="acme").active is True
    assert not Tenant.objects.filter(pk="sneaky").exists()


@pytest.mark.parametrize(("method", "path"), PLATFORM_CALLS)
def test_non_staff_platform_user_is_403(method, path):
    from tenants.models import StaffToken

    user = get_user_model().objects.create_user(username="nonstaff", password="pw-123456")
    _, key = StaffToken.issue(user=user)
    response = getattr(JsonClient(token=key), method)(path)
    assert response.status_code == 403
    assert response.json() == {"error": "Platform staff only"}


def test_token_login_and_revocation():
    client = JsonClient()
    assert client.post("/admin/auth/token", {"username": "admin", "password": "wrong"}).status_code == 401
    assert client.post("/admin/auth/token", {"username": "alice", "password": "demo-pass-2024"}).status_code == 401
    assert client.post("/admin/auth/token", {"username": "admin"}).status_code == 400
    key = client.post("/admin/auth/token", {"username": "admin", "password": "demo-pass-2024"}).json()["token"]
    authed = JsonClient(token=key)
    assert authed.get("/admin/tenants").status_code == 200
    assert authed.delete("/admin/auth/token").status_code == 204
    assert authed.get("/admin/tenants").status_code == 401


def test_tokens_are_stored_hashed(keys):
    from tenants.models import StaffToken

    assert not StaffToken.objects.filter(key_digest=keys.admin).exists()
    assert StaffToken.objects.filter(prefix=keys.admin[:8]).exists()


def test_staff_session_login_works():
    client = JsonClient()
    assert client.login(username="admin", password="demo-pass-2024")
    assert client.get("/admin/tenants").status_code == 200
    # Session writes need the CSRF token, like the Django admin.
    client_csrf = JsonClient(enforce_csrf_checks=True)
    client_csrf.login(username="admin", password="demo-pass-2024")
    assert client_csrf.put("/admin/tenants/globex/suspend").status_code == 403
    assert Tenant.objects.get(pk="globex").active is True
