"""The tenant's pages on its host (sign-in, dashboard, user forms) and the public home page."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from accounts import services
from accounts.models import TenantUser
from accounts.selectors import get_workspace_settings
from core.models import AuditEvent
from tenants.models import Tenant
from tests.conftest import DEMO_PASSWORD, JsonClient

pytestmark = pytest.mark.django_db

FORM = "multipart/form-data"


def signed_in(username: str, host: str = "acme.localhost", **client_options) -> JsonClient:
    client = JsonClient(host=host, **client_options)
    response = client.post("/login", {"username": username, "password": DEMO_PASSWORD}, content_type=FORM)
    assert response.status_code == 302, response.content.decode()[:500]
    assert response["Location"] == "/"
    return client


def page(response) -> str:
    return response.content.decode()


def test_public_home_explains_the_platform_and_links_admin_and_docs():
    response = JsonClient().get("/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    text = page(response)
    assert "multi-tenant" in text
    assert 'href="/django-admin/"' in text
    assert 'href="/api/docs/"' in text


def test_tenant_home_asks_anonymous_visitors_to_sign_in():
    client = JsonClient(host="acme.localhost")
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login")
    login_page = client.get(response["Location"])
    assert login_page.status_code == 200
    assert "Sign in to Acme Corporation" in page(login_page)
    assert "csrfmiddlewaretoken" in page(login_page)


def test_wrong_password_shows_a_message_not_an_error_page():
    response = JsonClient(host="acme.localhost").post(
        "/login", {"username": "alice", "password": "wrong"}, content_type=FORM
    )
    assert response.status_code == 200
    assert "correct username and password" in page(response)


def test_users_of_one_tenant_cannot_sign_in_on_another():
    response = JsonClient(host="globex.localhost").post(
        "/login", {"username": "alice", "password": DEMO_PASSWORD}, content_type=FORM
    )
    assert response.status_code == 200
    assert "correct username and password" in page(response)


def test_a_session_of_one_tenant_is_not_valid_on_another():
    client = signed_in("alice")
    session_key = client.cookies["sessionid"].value
    other = JsonClient(host="globex.localhost")
    other.cookies["sessionid"] = session_key
    assert other.get("/").status_code == 302
    assert other.get("/api/me").status_code in (401, 403)


def test_platform_admin_cannot_sign_in_on_a_tenant_host():
    response = JsonClient(host="acme.localhost").post(
        "/login", {"username": "admin", "password": DEMO_PASSWORD}, content_type=FORM
    )
    assert response.status_code == 200
    assert "correct username and password" in page(response)


def test_tenant_users_cannot_sign_in_to_the_django_admin():
    client = JsonClient()
    response = client.post(
        "/django-admin/login/?next=/django-admin/",
        {"username": "alice", "password": DEMO_PASSWORD, "next": "/django-admin/"},
        content_type=FORM,
    )
    assert response.status_code == 200
    assert "Please enter the correct username and password" in page(response)
    assert client.get("/django-admin/").status_code == 302


def test_dashboard_shows_name_plan_features_usage_users_and_theme():
    with schema_context("acme"):
        services.update_workspace_settings({"display_name": "Acme Portal", "theme_color": "#ff5500"})
    response = signed_in("alice").get("/")
    assert response.status_code == 200
    text = page(response)
    assert "<h1>Acme Corporation</h1>" in text
    assert '<dd id="plan">enterprise</dd>' in text
    assert '<dd id="user-count">2 of 100</dd>' in text
    for feature in ("analytics", "api", "export"):
        assert f'<span class="tag">{feature}</span>' in text
    assert 'data-username="alice"' in text and 'data-username="bob"' in text
    assert "--theme: #ff5500;" in text
    assert "Acme Portal" in text
    assert "Add a user" in text


def test_members_see_the_users_but_no_forms_and_cannot_post():
    client = signed_in("bob")
    text = page(client.get("/"))
    assert 'data-username="alice"' in text
    assert "Add a user" not in text
    response = client.post("/users", {"name": "Eve", "role": "member"}, content_type=FORM)
    assert response.status_code == 403
    assert "Tenant admin role required" in page(response)
    with schema_context("acme"):
        assert not TenantUser.objects.filter(name="Eve").exists()


def test_admin_adds_a_user_through_the_form():
    client = signed_in("alice")
    response = client.post(
        "/users",
        {"name": "Dana Scully", "username": "dana", "email": "dana@example.com", "role": "member"},
        content_type=FORM,
        follow=True,
    )
    assert response.status_code == 200
    text = page(response)
    assert "Added Dana Scully (dana) as member." in text
    assert 'data-username="dana"' in text
    assert '<dd id="user-count">3 of 100</dd>' in text
    with schema_context("acme"):
        assert TenantUser.objects.get(username="dana").email == "dana@example.com"


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"name": ""}, 400, "Invalid name: This field is required."),
        ({"name": "Dana", "username": "Bad Name!"}, 400, "Invalid username: Use 1 to 150 lower-case"),
        ({"name": "Dana", "email": "not-an-email"}, 400, "Invalid email: Enter a valid email address."),
        ({"name": "Dana", "role": "owner"}, 400, "Invalid role: &quot;owner&quot; is not a valid choice."),
        ({"name": "Dana", "password": "short"}, 400, "Invalid password:"),
        ({"name": "Bobby", "username": "bob"}, 409, "Username &#x27;bob&#x27; is taken"),
        ({"name": "x" * 201}, 400, "Invalid name: Ensure this field has no more than 200 characters."),
    ],
)
def test_bad_input_in_the_add_form_gives_the_api_message(fields, status, message):
    client = signed_in("alice")
    response = client.post("/users", {"role": "member", **fields}, content_type=FORM)
    assert response.status_code == status
    assert message in page(response)
    # What was typed stays in the form, so the person can correct it.
    if fields.get("name"):
        assert f'value="{fields["name"]}"' in page(response)
    with schema_context("acme"):
        assert TenantUser.objects.count() == 2


def test_same_message_as_the_api_for_the_same_input(keys):
    api = JsonClient(token=keys.alice, tenant="acme").post("/api/users", {"name": "Dana", "email": "nope"})
    form = signed_in("alice").post("/users", {"name": "Dana", "email": "nope"}, content_type=FORM)
    assert api.status_code == form.status_code == 400
    assert api.json()["error"] in page(form)


def test_plan_limit_is_shown_in_the_form(keys):
    with schema_context("globex"):
        tenant = Tenant.objects.get(pk="globex")
        for number in range(9):
            services.create_user(tenant, name=f"Filler {number}")
    client = signed_in("charlie", host="globex.localhost")
    text = page(client.get("/"))
    assert '<dd id="user-count">10 of 10</dd>' in text
    assert "at its plan's limit of 10 users" in text
    response = client.post("/users", {"name": "Eleventh", "role": "member"}, content_type=FORM)
    assert response.status_code == 403
    assert "User limit reached (10 users on starter plan)" in page(response)
    api = JsonClient(token=keys.charlie, tenant="globex").post("/api/users", {"name": "Eleventh"})
    assert api.json() == {"error": "User limit reached (10 users on starter plan)"}


def test_admin_changes_a_role_and_the_last_admin_is_kept():
    client = signed_in("alice")
    with schema_context("acme"):
        bob = TenantUser.objects.get(username="bob")
        alice = TenantUser.objects.get(username="alice")
    response = client.post(f"/users/{bob.pk}/role", {"role": "admin"}, content_type=FORM, follow=True)
    assert "Bob is now admin." in page(response)
    response = client.post(f"/users/{bob.pk}/role", {"role": "member"}, content_type=FORM)
    assert response.status_code == 302
    response = client.post(f"/users/{alice.pk}/role", {"role": "member"}, content_type=FORM)
    assert response.status_code == 409
    assert "A tenant must keep at least one admin" in page(response)
    response = client.post(f"/users/{bob.pk}/role", {"role": "boss"}, content_type=FORM)
    assert response.status_code == 400
    assert "Invalid role" in page(response)
    with schema_context("acme"):
        assert TenantUser.objects.get(pk=alice.pk).role == "admin"


def test_admin_removes_a_user_and_unknown_ids_are_404():
    client = signed_in("alice")
    with schema_context("acme"):
        bob = TenantUser.objects.get(username="bob")
    response = client.post(f"/users/{bob.pk}/remove", content_type=FORM, follow=True)
    assert "Removed Bob (bob)." in page(response)
    assert 'data-username="bob"' not in page(response)
    for missing in (str(bob.pk), "99999", "abc", "9" * 30):
        response = client.post(f"/users/{missing}/remove", content_type=FORM)
        assert response.status_code == 404
        assert "User not found" in page(response)


def test_the_last_admin_cannot_remove_themselves():
    client = signed_in("charlie", host="globex.localhost")
    with schema_context("globex"):
        charlie = TenantUser.objects.get(username="charlie")
    response = client.post(f"/users/{charlie.pk}/remove", content_type=FORM)
    assert response.status_code == 409
    assert "A tenant must keep at least one admin" in page(response)


def test_forms_need_a_csrf_token():
    client = signed_in("alice", enforce_csrf_checks=False)
    strict = JsonClient(host="acme.localhost", enforce_csrf_checks=True)
    strict.cookies = client.cookies
    response = strict.post("/users", {"name": "Mallory"}, content_type=FORM)
    assert response.status_code == 403
    with schema_context("acme"):
        assert not TenantUser.objects.filter(name="Mallory").exists()


def test_pages_refuse_wrong_methods():
    client = signed_in("alice")
    assert client.get("/users").status_code == 405
    assert client.post("/", {}, content_type=FORM).status_code == 405


def test_sign_out_ends_the_session():
    client = signed_in("alice")
    assert client.get("/").status_code == 200
    response = client.post("/logout", content_type=FORM)
    assert response.status_code == 302
    assert response["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_signed_in_visitors_of_the_login_page_go_to_the_dashboard():
    client = signed_in("alice")
    response = client.get("/login")
    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.parametrize("host", ["nowhere.localhost"])
def test_unknown_workspace_page_for_browsers_and_json_for_api(host):
    browser = JsonClient(host=host).get("/", HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert browser.status_code == 404
    assert browser["Content-Type"].startswith("text/html")
    assert "No workspace called" in page(browser) and "nowhere" in page(browser)
    api = JsonClient(host=host).get("/api/me", HTTP_ACCEPT="text/html")
    assert api.status_code == 404
    assert api.json() == {"error": "Unknown tenant: nowhere"}


def test_suspended_workspace_page_for_browsers_and_json_for_api():
    Tenant.objects.filter(pk="globex").update(active=False)
    browser = JsonClient(host="globex.localhost").get("/login", HTTP_ACCEPT="text/html")
    assert browser.status_code == 403
    assert "This workspace is suspended" in page(browser)
    api = JsonClient(host="globex.localhost").get("/api/users")
    assert api.status_code == 403
    assert api.json() == {"error": "Tenant account is suspended"}


def test_admin_changes_the_workspace_settings_and_the_theme_follows():
    client = signed_in("alice")
    response = client.post(
        "/settings",
        {"display_name": "Acme Portal", "theme_color": "#FF5500", "timezone": "Europe/Paris"},
        content_type=FORM,
        follow=True,
    )
    text = page(response)
    assert "Workspace settings saved." in text
    assert "--theme: #ff5500;" in text
    assert '<span class="name">Acme Portal</span>' in text
    response = client.post(
        "/settings", {"display_name": "", "theme_color": "#ff5500", "timezone": "UTC"}, content_type=FORM, follow=True
    )
    assert '<span class="name">Acme Corporation</span>' in page(response)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"theme_color": "red"}, "Invalid theme_color: Use a colour of the form #rrggbb."),
        ({"theme_color": "#12345g"}, "Invalid theme_color: Use a colour of the form #rrggbb."),
        ({"timezone": "Nowhere/Land"}, "Invalid timezone: unknown time zone &#x27;Nowhere/Land&#x27;"),
        ({"display_name": "x" * 101}, "Invalid display_name: Ensure this field has no more than 100 characters."),
    ],
)
def test_bad_settings_are_refused_with_the_api_message(fields, message):
    client = signed_in("alice")
    response = client.post(
        "/settings", {"display_name": "", "theme_color": "#2563eb", "timezone": "UTC", **fields}, content_type=FORM
    )
    assert response.status_code == 400
    assert message in page(response)
    with schema_context("acme"):
        assert get_workspace_settings().timezone == "UTC"


def test_members_cannot_change_settings():
    response = signed_in("bob").post("/settings", {"theme_color": "#000000"}, content_type=FORM)
    assert response.status_code == 403
    with schema_context("acme"):
        assert get_workspace_settings().theme_color == "#2563eb"


def test_page_actions_are_recorded_in_the_audit_trail_as_the_signed_in_user():
    signed_in("alice").post("/users", {"name": "Audited Person", "role": "member"}, content_type=FORM)
    with schema_context("acme"):
        event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.actor_kind, event.actor) == ("user.create", "tenant", "alice")


def test_sign_in_page_is_throttled_like_the_token_endpoint():
    client = JsonClient(host="acme.localhost")
    for _ in range(10):
        response = client.post("/login", {"username": "alice", "password": "wrong"}, content_type=FORM)
        assert response.status_code == 200
    response = client.post("/login", {"username": "alice", "password": DEMO_PASSWORD}, content_type=FORM)
    assert response.status_code == 429
    assert "Too many sign-in attempts. Try again in" in page(response)
    assert client.get("/").status_code == 302  # still signed out
    # Another tenant's sign-ins are counted apart.
    assert signed_in("charlie", host="globex.localhost").get("/").status_code == 200


def test_dashboard_lists_a_bounded_number_of_users(monkeypatch):
    from accounts import views

    monkeypatch.setattr(views, "SHOWN_USERS", 1)
    text = page(signed_in("alice").get("/"))
    assert 'data-username="alice"' in text and 'data-username="bob"' not in text
    assert '<dd id="user-count">2 of 100</dd>' in text
    assert "and 1 more" in text
