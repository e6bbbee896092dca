"""The OpenAPI schema at /api/schema/ and the offline docs page at /api/docs/."""

from __future__ import annotations

import re

import pytest

from tests.conftest import JsonClient

pytestmark = pytest.mark.django_db

PLATFORM = [
    "/admin/auth/token",
    "/admin/tenants",
    "/admin/tenants/{tenant_id}",
    "/admin/tenants/{tenant_id}/suspend",
    "/admin/tenants/{tenant_id}/usage",
    "/admin/tenants/{tenant_id}/move",
    "/admin/nodes",
]
TENANT = ["/api/me", "/api/auth/token", "/api/settings", "/api/users", "/api/users/{user_id}", "/api/export"]
MACHINE = ["/api/keys", "/api/keys/{key_id}", "/api/auth/jwt", "/api/auth/jwt/refresh", "/api/usage"]
JWKS = "/.well-known/jwks.json"


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = JsonClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_schema_is_served_with_and_without_slash_and_without_tenant():
    for path in ("/api/schema", "/api/schema/"):
        response = JsonClient().get(path, HTTP_ACCEPT="application/vnd.oai.openapi+json")
        assert response.status_code == 200
        assert response.json()["openapi"].startswith("3.")


def test_schema_describes_platform_and_tenant_routes(schema):
    extra = [
        "/api/analytics",
        "/api/events",
        "/admin/tenants/{tenant_id}/activate",
        "/admin/tenants/{tenant_id}/events",
        "/admin/tenants/{tenant_id}/exports",
        "/admin/tenants/{tenant_id}/restore",
        "/admin/tenants/import",
        "/admin/jobs/{job_id}",
        "/admin/jobs/{job_id}/download",
        "/api/exports",
        "/api/exports/{job_id}",
        "/api/exports/{job_id}/download",
    ]
    for path in PLATFORM + TENANT + MACHINE + extra + [JWKS]:
        assert path in schema["paths"], path
    assert set(schema["paths"]["/api/users/{user_id}"]) == {"get", "patch", "delete"}
    assert set(schema["paths"]["/admin/tenants"]) == {"get", "post"}
    assert set(schema["paths"]["/api/keys"]) == {"get", "post"}
    assert set(schema["paths"]["/api/keys/{key_id}"]) == {"delete"}
    assert set(schema["paths"]["/admin/tenants/{tenant_id}"]) == {"get", "patch", "delete"}
    assert set(schema["paths"]["/admin/tenants/{tenant_id}/exports"]) == {"get", "post"}
    upload = schema["paths"]["/admin/tenants/import"]["post"]["requestBody"]["content"]
    assert list(upload) == ["multipart/form-data"]
    assert list(schema["paths"]["/admin/jobs/{job_id}/download"]["get"]["responses"]["200"]["content"]) == [
        "application/gzip"
    ]
    # Every route the URL confs serve is there, and nothing else (no pages, no admin).
    assert all(path.startswith(("/api/", "/admin/")) or path == JWKS for path in schema["paths"])


def test_tenant_routes_take_the_tenant_header_and_platform_routes_do_not(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
            if path.startswith("/api/"):
                assert headers == ["X-Tenant-ID"], (path, method)
                assert operation["tags"] == ["tenant"]
            elif path == JWKS:
                assert headers == [] and operation["security"] == [{}], (path, method)
                assert operation["tags"] == ["platform"]
            else:
                assert headers == [], (path, method)
                assert operation["tags"] == ["platform"]


def test_security_schemes_per_side(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["tenantToken"] == {
        **schemes["tenantToken"],
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
    }
    assert schemes["staffSession"]["in"] == "cookie"
    assert schema["paths"]["/api/users"]["get"]["security"] == [
        {"tenantToken": []},
        {"apiKey": []},
        {"jwt": []},
        {"tenantSession": []},
    ]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "http", "scheme": "bearer"}
    assert schemes["jwt"] == {**schemes["jwt"], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    # Sign-in routes take no credentials but an optional API key, and are throttled.
    assert "429" in schema["paths"]["/api/auth/jwt"]["post"]["responses"]
    assert "429" in schema["paths"]["/api/auth/jwt/refresh"]["post"]["responses"]
    assert schema["paths"]["/admin/tenants"]["get"]["security"] == [{"staffToken": []}, {"staffSession": []}]
    # Getting a token needs no credentials, and is throttled (the sign-in throttle); revoking a tenant's
    # token counts against its plan's rate limit, revoking a staff token against nothing.
    assert "429" in schema["paths"]["/api/auth/token"]["post"]["responses"]
    assert "429" in schema["paths"]["/admin/auth/token"]["post"]["responses"]
    assert "429" in schema["paths"]["/api/auth/token"]["delete"]["responses"]
    assert "429" not in schema["paths"]["/admin/auth/token"]["delete"]["responses"]
    assert {} in schema["paths"]["/api/auth/token"]["post"]["security"]
    assert {} in schema["paths"]["/admin/auth/token"]["post"]["security"]


def test_error_responses_and_bodies(schema):
    error_ref = {"$ref": "#/components/schemas/Error"}
    create = schema["paths"]["/api/users"]["post"]
    assert {"201", "400", "401", "403", "404", "409", "413", "415", "429", "503"} <= set(create["responses"])
    assert create["responses"]["403"]["content"]["application/json"]["schema"] == error_ref
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UserCreateRequest"
    }
    body = schema["components"]["schemas"]["UserCreateRequest"]
    assert body["required"] == ["name"] and body["additionalProperties"] is False
    assert set(schema["paths"]["/admin/tenants"]["post"]["responses"]) >= {"201", "400", "401", "403", "409"}
    assert set(schema["paths"]["/admin/tenants/{tenant_id}"]["get"]["responses"]) >= {"200", "401", "403", "404"}
    assert "204" in schema["paths"]["/api/users/{user_id}"]["delete"]["responses"]
    user = schema["components"]["schemas"]["User"]["properties"]
    assert user["id"]["type"] == "string" and user["created_at"]["type"] == "integer"
    assert schema["components"]["schemas"]["Error"]["required"] == ["error"]


def test_documented_shapes_match_real_answers(schema, keys):
    """The documented properties of a few answers are exactly the keys the API sends."""
    components = schema["components"]["schemas"]

    def keys_of(name: str) -> set[str]:
        return set(components[name]["properties"])

    alice = JsonClient(token=keys.alice, tenant="acme")
    assert set(alice.get("/api/me").json()) == keys_of("TenantProfile")
    assert set(alice.get("/api/me").json()["settings"]) == keys_of("WorkspaceSettings")
    users = alice.get("/api/users").json()
    assert set(users) == keys_of("UserList") and set(users["users"][0]) == keys_of("User")
    assert set(alice.get("/api/analytics").json()) == keys_of("Analytics")
    assert set(alice.get("/api/export").json()) == keys_of("Export")
    staff = JsonClient(token=keys.admin)
    assert set(staff.get("/admin/tenants/acme").json()) == keys_of("TenantDetail")
    assert set(staff.get("/admin/tenants").json()) == keys_of("TenantList")
    alice.post("/api/users", {"name": "Audited"})
    events = alice.get("/api/events").json()
    assert set(events) == keys_of("EventList") and set(events["events"][0]) == keys_of("Event")
    assert set(staff.get("/admin/tenants/acme/events").json()) == keys_of("EventList")
    export = staff.post("/admin/tenants/acme/exports").json()
    assert set(export) == keys_of("Job")
    assert set(staff.get(f"/admin/jobs/{export['id']}").json()) == keys_of("Job")
    assert set(staff.get("/admin/tenants/acme/exports").json()) == keys_of("JobList")
    assert set(alice.post("/api/exports").json()) == keys_of("Job")
    assert set(staff.delete("/admin/tenants/globex").json()) == keys_of("TenantDeleted")
    assert set(alice.get("/api/nope").json()) == keys_of("Error") - {"detail"}
    created = alice.post("/api/keys", {"name": "doc", "scopes": ["read"]}).json()
    assert set(created) == keys_of("ApiKeyCreated")
    assert set(alice.get("/api/keys").json()["keys"][0]) == keys_of("ApiKey")
    assert set(alice.get("/api/usage").json()) == keys_of("Usage")
    assert set(staff.get("/admin/tenants/acme/usage").json()) == keys_of("Usage")
    pair = JsonClient(tenant="acme").post("/api/auth/jwt", {"username": "alice", "password": "demo-pass-2024"})
    assert set(pair.json()) == keys_of("TokenPair")
    assert set(JsonClient().get("/.well-known/jwks.json").json()["keys"][0]) == keys_of("Jwk")


def test_docs_page_works_offline():
    response = JsonClient().get("/api/docs/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    text = response.content.decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', text)
    assert assets, "the docs page should load its assets from this server"
    assert not re.search(r'(?:src|href)="https?://', text), "no asset from another site"
    for asset in assets:
        static = JsonClient().get(asset)
        assert static.status_code == 200, asset
    assert "/api/schema" in text


def test_docs_are_absent_on_tenant_hosts_and_need_no_header_on_public():
    assert JsonClient().get("/api/docs").status_code == 200
    assert JsonClient(host="acme.localhost").get("/api/schema").status_code == 404
