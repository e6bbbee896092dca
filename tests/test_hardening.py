"""What an outside attack on the running demo found (issue 14), point by point.

Points 2, 3, 4, 5 and 6 of the issue; the sign-in throttle (point 1) has its own module,
and tests/test_hostile_inputs.py sweeps every route with the whole class of inputs.
"""

from __future__ import annotations

import json
import zoneinfo

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.urls import get_resolver
from django_tenants.utils import schema_context

from accounts.models import TenantUser
from accounts.selectors import get_workspace_settings
from tenants import ratelimit
from tenants import services as tenant_services
from tenants.models import StaffToken
from tests.conftest import DEMO_PASSWORD, JsonClient

pytestmark = pytest.mark.django_db

FORM = "multipart/form-data"
NUL_SESSION = "sessionid=abcdefghijklmnop\x00qrstuvwxyz012345"


def is_json_error(response) -> bool:
    if not response["Content-Type"].startswith("application/json"):
        return False
    body = json.loads(response.content)
    return isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"] != ""


def is_page(response) -> bool:
    return response["Content-Type"].startswith("text/html")


def signed_in(username: str, host: str = "acme.localhost") -> JsonClient:
    client = JsonClient(host=host, HTTP_ACCEPT="text/html")  # a person in a browser
    response = client.post("/login", {"username": username, "password": DEMO_PASSWORD}, content_type=FORM)
    assert response.status_code == 302, response.content.decode()[:300]
    return client


def staff_browser() -> JsonClient:
    client = JsonClient(raise_request_exception=False, HTTP_ACCEPT="text/html")
    with schema_context("public"):  # where the platform's sessions live, whatever the last request selected
        staff = get_user_model().objects.get(username="admin")
        client.force_login(staff, backend="accounts.backends.PlatformStaffBackend")
    return client


# --- 2. No 500 that anyone can cause -------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "method", "path"),
    [
        ("staff", "get", "/admin/tenants"),
        ("staff", "get", "/admin/tenants/acme"),
        ("staff", "get", "/admin/tenants/acme/events"),
        ("staff", "put", "/admin/tenants/acme/suspend"),
        ("anon", "post", "/admin/auth/token"),
        ("alice", "get", "/api/me"),
        ("alice", "get", "/api/users"),
        ("alice", "delete", "/api/users/2"),
        ("alice", "put", "/api/settings"),
        ("anon", "post", "/api/auth/token"),
        ("anon", "get", "/api/schema/"),
        ("anon", "get", "/api/docs/"),
    ],
)
@pytest.mark.parametrize("fmt", ["xyz", "openapi", "yaml", "api", "%00"])
def test_an_unknown_format_is_a_json_400_on_every_drf_route(keys, who, method, path, fmt):
    token = {"staff": keys.admin, "alice": keys.alice, "anon": None}[who]
    tenant = "acme" if path.startswith("/api/") and not path.startswith(("/api/schema", "/api/docs")) else None
    client = JsonClient(token=token, tenant=tenant, raise_request_exception=False)
    response = getattr(client, method)(f"{path}?format={fmt}")
    served = {"/api/schema/": ("yaml",), "/api/docs/": ()}.get(path, ("api",))  # the others have JSON and api
    if fmt in served:
        assert response.status_code < 500
        return
    assert response.status_code == 400, response.content[:200]
    assert is_json_error(response)
    if path == "/api/users/2":
        with schema_context("acme"):
            assert TenantUser.objects.filter(pk=2).exists()  # refused before anything ran


@pytest.mark.parametrize(
    ("host", "path", "api"),
    [
        ("localhost", "/api/me", True),
        ("acme.localhost", "/api/users", True),
        ("localhost", "/admin/tenants", True),
        ("acme.localhost", "/", False),
        ("acme.localhost", "/login", False),
        ("acme.localhost", "/api-auth/login/", False),
        ("localhost", "/django-admin/", False),
        ("localhost", "/django-admin/login/", False),
    ],
)
@pytest.mark.parametrize("cookie", [NUL_SESSION, "csrftoken=abcdefghijklmnop\x00qrstuvwxyz01234"])
def test_a_nul_byte_in_a_cookie_is_a_400_on_every_route(host, path, api, cookie):
    client = JsonClient(host=host, tenant="acme" if host == "localhost" and path.startswith("/api/") else None)
    client.raise_request_exception = False
    for method in ("get", "post"):
        response = getattr(client, method)(path, HTTP_COOKIE=cookie, HTTP_ACCEPT="text/html")
        assert response.status_code == 400, (method, response.content[:200])
        assert is_json_error(response) if api else is_page(response)


def nested_object(depth: int) -> str:
    return '{"name": ' * depth + '"x"' + "}" * depth


@pytest.mark.parametrize(
    ("who", "method", "path"),
    [
        ("anon", "post", "/api/auth/token"),
        ("alice", "post", "/api/users"),
        ("alice", "patch", "/api/users/2"),
        ("alice", "put", "/api/settings"),
        ("anon", "post", "/admin/auth/token"),
        ("staff", "post", "/admin/tenants"),
        ("staff", "patch", "/admin/tenants/acme"),
    ],
)
@pytest.mark.parametrize(
    "body",
    [
        "[" * 1000 + "]" * 1000,
        "[" * 100_000 + "]" * 100_000,
        nested_object(1000),
        '{"max_users": ' + "[" * 950 + "]" * 950 + "}",
        '{"features": ' + "[" * 2000 + "]" * 2000 + "}",
    ],
    ids=["array-1000", "array-100000", "object-1000", "value-950", "value-2000"],
)
def test_deeply_nested_json_is_a_json_400(keys, who, method, path, body):
    token = {"staff": keys.admin, "alice": keys.alice, "anon": None}[who]
    client = JsonClient(token=token, tenant="acme" if path.startswith("/api/") else None, raise_request_exception=False)
    response = getattr(client, method)(path, body)
    assert response.status_code == 400, response.content[:200]
    assert is_json_error(response)


# --- 3. Every answer on an API route is JSON ----------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example.com", "", "acme\x00.localhost", "a b", "[::1"])
@pytest.mark.parametrize(
    ("path", "api"),
    [("/api/me", True), ("/api/users", True), ("/admin/tenants", True), ("/api/docs/", True), ("/", False)],
)
def test_a_bad_host_is_a_400_in_json_on_api_routes(host, path, api):
    # Sent as a browser would: API routes answer JSON all the same.
    response = JsonClient(host=host, tenant="acme", raise_request_exception=False).get(path, HTTP_ACCEPT="text/html")
    assert response.status_code == 400
    assert is_json_error(response) if api else is_page(response)


@pytest.mark.parametrize(
    ("who", "path", "api"),
    [
        ("staff", "/admin/tenants", True),
        ("alice", "/api/users", True),
        ("alice", "/api/events", True),
        ("anon", "/api/docs/", True),
        ("anon", "/api/schema/", True),
        ("browser", "/django-admin/tenants/tenant/", False),
    ],
)
def test_more_than_a_thousand_query_parameters_is_a_400_in_json_on_api_routes(keys, who, path, api):
    if who == "browser":
        client = staff_browser()
    else:
        token = {"staff": keys.admin, "alice": keys.alice, "anon": None}[who]
        tenant = None if path.startswith(("/api/docs", "/api/schema")) else "acme"
        client = JsonClient(token=token, tenant=tenant, raise_request_exception=False)
    query = "&".join(f"p{n}=1" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    assert is_json_error(response) if api else is_page(response)


def test_more_than_a_thousand_form_fields_to_a_page_is_a_400_page():
    client = signed_in("alice")
    fields = {f"f{n}": "1" for n in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = client.post("/settings", fields, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert is_page(response)


@pytest.mark.parametrize("urlconf", [settings.PUBLIC_SCHEMA_URLCONF, settings.ROOT_URLCONF])
@pytest.mark.parametrize("status", [400, 403, 404, 500])
def test_error_handlers_answer_json_on_api_routes_and_pages_elsewhere(urlconf, status):
    handler = get_resolver(urlconf).resolve_error_handler(status)
    paths = [("/api/users", True), ("/admin/tenants", True), ("/dashboard", False), ("/django-admin/x", False)]
    for path, api in paths:
        request = RequestFactory().get(path, HTTP_ACCEPT="text/html")
        response = handler(request) if status == 500 else handler(request, exception=Exception("boom"))
        assert response.status_code == status
        assert is_json_error(response) if api else is_page(response)
        assert b"boom" not in response.content


def test_a_csrf_failure_on_an_api_route_is_json():
    # A session-authenticated write without the CSRF token: DRF's own check answers 403 in JSON.
    client = JsonClient(tenant="acme", enforce_csrf_checks=True)
    with schema_context("acme"):
        client.force_login(TenantUser.objects.get(username="alice"), backend="accounts.backends.TenantUserBackend")
    response = client.post("/api/users", {"name": "Sneaky"})
    assert response.status_code == 403
    assert is_json_error(response)


# --- 4. Tenants never see staff identities ------------------------------------------------------


def test_tenants_see_platform_actions_by_platform_never_by_a_staff_name(alice):
    operator = get_user_model().objects.create_user("jane.operator", password=DEMO_PASSWORD, is_staff=True)
    _, key = StaffToken.issue(user=operator, name="tests")
    staff = JsonClient(token=key)
    assert staff.put("/admin/tenants/acme/suspend").status_code == 200
    assert staff.put("/admin/tenants/acme/activate").status_code == 200
    assert staff.patch("/admin/tenants/acme", {"max_users": 90}).status_code == 200

    response = alice.get("/api/events")
    assert "jane.operator" not in response.content.decode()
    platform = [event for event in response.json()["events"] if event["actor"]["kind"] == "platform"]
    assert [event["action"] for event in platform] == ["tenant.update", "tenant.activate", "tenant.suspend"]
    assert all(event["actor"] == {"kind": "platform", "name": "platform"} for event in platform)

    # Staff still see who did it.
    staff_view = staff.get("/admin/tenants/acme/events").json()["events"]
    assert {event["actor"]["name"] for event in staff_view if event["actor"]["kind"] == "platform"} == {"jane.operator"}


def test_the_first_admin_created_by_the_platform_shows_platform_to_the_tenant(staff):
    admin = {"username": "bill", "name": "Bill", "password": "tps-9-report"}
    body = {"id": "initech", "name": "Initech", "admin": admin}
    assert staff.post("/admin/tenants", body).status_code == 201
    token = JsonClient(tenant="initech").post("/api/auth/token", {"username": "bill", "password": "tps-9-report"})
    events = JsonClient(tenant="initech", token=token.json()["token"]).get("/api/events").json()["events"]
    assert {event["actor"]["name"] for event in events} == {"platform"}


# --- 5. The plan's rate limit counts pages too --------------------------------------------------


@pytest.fixture
def acme_limit(monkeypatch):
    """Sets acme's requests per minute, with the clock held inside one window."""
    monkeypatch.setattr(ratelimit, "now", lambda: 1_800_000_410.0)

    def set_limit(per_minute: int) -> None:
        tenant_services.update_tenant("acme", {"rate_limit_per_minute": per_minute})

    return set_limit


def test_the_dashboards_forms_get_the_429_of_the_plan_limit(acme_limit, keys):
    client = signed_in("alice")  # signing in is not counted: nobody is signed in yet
    acme_limit(3)
    assert client.get("/").status_code == 200
    assert client.post("/settings", {"display_name": "Counted"}, content_type=FORM).status_code == 302
    assert JsonClient(token=keys.alice, tenant="acme").get("/api/me").status_code == 200

    refused = client.post("/settings", {"display_name": "Over the limit"}, content_type=FORM)
    assert refused.status_code == 429
    assert is_page(refused)
    assert "Rate limit exceeded" in refused.content.decode()
    assert int(refused["Retry-After"]) > 0
    refused = client.post("/users", {"name": "Over the limit", "role": "member"}, content_type=FORM)
    assert refused.status_code == 429
    assert client.get("/").status_code == 429
    with schema_context("acme"):
        assert get_workspace_settings().display_name == "Counted"
        assert not TenantUser.objects.filter(name="Over the limit").exists()
    api = JsonClient(token=keys.alice, tenant="acme").get("/api/users")
    assert api.status_code == 429
    assert api.json() == {"error": "Rate limit exceeded"}


def test_a_session_request_to_the_api_counts_once(acme_limit):
    client = signed_in("alice")
    acme_limit(2)
    assert [client.get("/api/me").status_code for _ in range(3)] == [200, 200, 429]


def test_static_files_are_not_counted(acme_limit):
    client = signed_in("alice")
    acme_limit(1)
    for _ in range(3):
        assert client.get("/static/admin/css/base.css").status_code == 200
    assert [client.get("/").status_code for _ in range(2)] == [200, 429]


# --- 6. Smaller ------------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "right/UTC", "posix/Europe/Paris", ""])
def test_time_zones_outside_the_iana_list_are_refused(alice, zone):
    response = alice.put("/api/settings", {"timezone": zone})
    assert response.status_code == 400
    assert "timezone" in response.json()["detail"]


def test_the_time_zone_list_comes_from_the_tzdata_package(alice, monkeypatch):
    # Whatever the host's zoneinfo files add, the package's list decides.
    monkeypatch.setattr(zoneinfo, "available_timezones", lambda: {"Mars/Olympus_Mons", "Europe/Paris"})
    assert alice.put("/api/settings", {"timezone": "Mars/Olympus_Mons"}).status_code == 400
    assert alice.put("/api/settings", {"timezone": "America/Argentina/Buenos_Aires"}).status_code == 200


def test_the_dashboard_refuses_localtime_too():
    response = signed_in("alice").post("/settings", {"timezone": "localtime"}, content_type=FORM)
    assert response.status_code == 400
    with schema_context("acme"):
        assert get_workspace_settings().timezone == "UTC"


@pytest.mark.parametrize("key", ["max_users", "features", "rate_limit_per_minute"])
def test_a_plan_governed_key_set_to_null_is_403_like_any_other_value(alice, key):
    response = alice.put("/api/settings", {key: None})
    assert response.status_code == 403
    assert response.json()["error"] == f"Setting '{key}' is governed by the plan; only the platform can change it"


@pytest.mark.parametrize(
    "path",
    [
        "/django-admin/tenants/tenant/a%00b/change/",
        "/django-admin/tenants/tenant/a%00b/history/",
        "/django-admin/tenants/tenant/a%00b/delete/",
        "/django-admin/tenants/plan/a%00b/change/",
        "/django-admin/auth/user/a%00b/change/",
        "/django-admin/r/1/a%00b/",
        "/django-admin/tenants/tenant/?plan__id__exact=a%00b",
        "/django-admin/tenants/tenant/?id=a%00b",
        "/django-admin/tenants/tenant/?q=a%00b",
        "/django-admin/auth/user/?username=a%00b",
    ],
)
def test_a_nul_byte_in_a_django_admin_url_or_filter_is_a_4xx_page(path):
    response = staff_browser().get(path)
    assert 400 <= response.status_code < 500
    assert is_page(response)


def test_a_nul_byte_in_a_django_admin_form_is_a_4xx_page():
    response = staff_browser().post(
        "/django-admin/tenants/tenant/", {"action": "suspend", "_selected_action": ["a\x00b"]}, content_type=FORM
    )
    assert 400 <= response.status_code < 500
    assert is_page(response)
