"""A database that cannot be reached gives 503 with Retry-After, and the app recovers without a restart.

The outage is real, not mocked: the connection is pointed at a Unix socket directory
where no server listens (what a stopped embedded server leaves behind), so psycopg's
own connect fails. bench/faults.py does the same with a server stopped under load.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest
from django.db import connection

from tests.conftest import JsonClient, wsgi_request

UNAVAILABLE = {"error": "Service temporarily unavailable"}


@pytest.fixture
def database_down(committed_db) -> Iterator[None]:
    """The default connection's server is gone for the duration of the test, then back."""
    saved = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}
    connection.close()
    with tempfile.TemporaryDirectory() as nowhere:
        connection.settings_dict.update(HOST=nowhere, PORT="")
        try:
            yield
        finally:
            connection.close()
            connection.settings_dict.update(saved)


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def terminate(pid: int) -> None:
    """End a server process from another connection, as a server restart ends every one; return once it is gone."""
    killer = connection.copy()
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
    finally:
        killer.close()


def _client(**kwargs) -> JsonClient:
    # The test client re-raises request exceptions by default; a real server never does.
    return JsonClient(raise_request_exception=False, **kwargs)


def _assert_unavailable(response) -> None:
    assert response.status_code == 503
    assert response.json() == UNAVAILABLE
    assert response["Retry-After"] == "2"


@pytest.mark.parametrize(
    "client_kwargs",
    [
        {"tenant": "acme"},  # tenant found by header: the lookup in the resolution middleware fails
        {"host": "acme.localhost"},  # by subdomain: the domain lookup fails
    ],
    ids=["header", "subdomain"],
)
def test_tenant_api_answers_503_while_database_is_down(database_down, keys, client_kwargs) -> None:
    client = _client(token=keys.alice, **client_kwargs)
    for path in ("/api/me", "/api/users", "/api/settings"):
        _assert_unavailable(client.get(path))
    _assert_unavailable(client.post("/api/users", {"name": "Nobody"}))


def test_platform_api_answers_503_while_database_is_down(database_down, keys) -> None:
    # Platform routes reach the database first in DRF's authentication, inside the view.
    client = _client(token=keys.admin)
    _assert_unavailable(client.get("/admin/tenants"))
    _assert_unavailable(client.post("/admin/tenants", {"id": "never-made", "name": "Never"}))
    _assert_unavailable(_client().post("/admin/auth/token", {"username": "admin", "password": "x" * 10}))


def test_pages_answer_503_while_database_is_down(database_down) -> None:
    response = _client(host="acme.localhost", HTTP_ACCEPT="text/html").get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert b"Temporarily unavailable" in response.content
    # A client that does not ask for HTML gets the JSON body on any route.
    _assert_unavailable(_client(host="acme.localhost").get("/"))


def test_app_serves_again_once_database_is_back(committed_db, keys) -> None:
    client = _client(token=keys.alice, tenant="acme")
    saved = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}
    connection.close()
    with tempfile.TemporaryDirectory() as nowhere:
        connection.settings_dict.update(HOST=nowhere, PORT="")
        try:
            _assert_unavailable(client.get("/api/me"))
        finally:
            connection.settings_dict.update(saved)
    response = client.get("/api/me")
    assert response.status_code == 200
    assert response.json()["id"] == "acme"


def test_dead_persistent_connection_is_replaced(committed_db, keys) -> None:
    """The server ends the app's connection (a restart does that to every one): it is discarded, not reused."""
    client = _client(token=keys.alice, tenant="acme")
    assert client.get("/api/me").status_code == 200
    terminate(backend_pid())
    # The test client skips Django's per-request health check, so the first request may meet the
    # dead connection: it must then answer 503, never 500, and drop it for the next request.
    first = client.get("/api/me")
    assert first.status_code in (200, 503)
    if first.status_code == 503:
        assert first.json() == UNAVAILABLE
    second = client.get("/api/me")
    assert second.status_code == 200
    assert second.json()["id"] == "acme"


def test_a_connection_killed_between_requests_is_replaced_without_an_error(committed_db, keys) -> None:
    """A restart kills every idle persistent connection: the next request's first read reconnects.

    No health check runs before requests; through Django's WSGI handler (as under gunicorn)
    the first statement meets the dead connection and is sent again on a new one.
    """
    headers = {"HTTP_AUTHORIZATION": f"Token {keys.alice}", "HTTP_X_TENANT_ID": "acme", "HTTP_HOST": "localhost"}
    pid = backend_pid()
    assert wsgi_request("/api/me", **headers)[0] == 200  # leaves the connection on acme's path
    terminate(pid)
    status, body = wsgi_request("/api/me", **headers)
    assert status == 200, body
    assert backend_pid() != pid


def test_a_transaction_left_open_by_a_dying_request_does_not_poison_the_thread(committed_db, keys, monkeypatch):
    """A request that loses its server inside a transaction, leaving Django's bookkeeping open, is cleaned up.

    Without the clean-up every later request of this thread either fails with "the connection
    is closed" or runs inside a transaction that never commits.
    """
    from django.db import transaction

    from accounts.services import provision_tenant_with_admin
    from api import tenant_views
    from tenants import services

    committed_db.append("leaky")
    provision_tenant_with_admin(
        tenant_id="leaky", name="Leaky", admin={"username": "lea", "name": "Lea", "password": "leaky-pass-1"}
    )
    services.update_tenant("leaky", {"rate_limit_per_minute": 0})
    token = JsonClient(tenant="leaky").post("/api/auth/token", {"username": "lea", "password": "leaky-pass-1"})
    client = _client(token=token.json()["token"], tenant="leaky")

    def dies_inside_a_transaction(self, request):
        transaction.atomic().__enter__()  # never exited, as when the failure hits Django's own bookkeeping
        terminate(backend_pid())
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    monkeypatch.setattr(tenant_views.AnalyticsViewSet, "retrieve", dies_inside_a_transaction)
    services.update_tenant("leaky", {"features": ["api", "analytics"]})
    _assert_unavailable(client.get("/api/analytics"))
    assert connection.in_atomic_block is False

    assert client.get("/api/me").status_code == 200
    created = client.post("/api/users", {"name": "After the storm"})
    assert created.status_code == 201
    # Committed for real: another connection sees it.
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute('SELECT count(*) FROM "leaky".accounts_tenantuser WHERE name = %s', ["After the storm"])
            assert cursor.fetchone()[0] == 1
    finally:
        other.close()
