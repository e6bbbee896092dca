"""One sign-in throttle for every way to sign in, per account and per client address (issue 14, point 1).

The ways: the tenant's sign-in page, the browsable API's log-in, both token endpoints and the
Django admin's log-in. Attempts are counted where every password is checked (Django's
``authenticate()``), so a way added later is throttled without knowing it. Counts are shared
by all worker processes: in the database, or in Redis when REDIS_URL is set.
"""

from __future__ import annotations

import os

import pytest
from django.core.cache import cache
from django.test import override_settings

from tenants import ratelimit
from tenants.models import RateLimitCounter
from tests.conftest import DEMO_PASSWORD, JsonClient, redis_available

pytestmark = pytest.mark.django_db

FORM = "multipart/form-data"
LIMIT = 10  # LOGIN_RATE's default: 10 a minute


def attempt(way: str, username: str, password: str, address: str = "203.0.113.7"):
    """One sign-in attempt by ``way``, from ``address``."""
    credentials = {"username": username, "password": password}
    if way == "django admin":
        client = JsonClient(REMOTE_ADDR=address, HTTP_ACCEPT="text/html")
        return client.post("/django-admin/login/", {**credentials, "next": "/django-admin/"}, content_type=FORM)
    if way == "staff token":
        return JsonClient(REMOTE_ADDR=address).post("/admin/auth/token", credentials)
    tenant_host = "globex.localhost" if username == "charlie" else "acme.localhost"
    page = {"HTTP_ACCEPT": "text/html"} if way in ("tenant page", "browsable API") else {}
    client = JsonClient(host=tenant_host, REMOTE_ADDR=address, **page)
    if way == "tenant page":
        return client.post("/login", credentials, content_type=FORM)
    if way == "browsable API":
        return client.post("/api-auth/login/", credentials, content_type=FORM)
    if way == "tenant token":
        return client.post("/api/auth/token", credentials)
    raise AssertionError(way)


def signed_in(way: str, response) -> bool:
    if way in ("staff token", "tenant token"):
        return response.status_code == 200 and "token" in response.json()
    return response.status_code == 302


def assert_throttled(way: str, response) -> None:
    assert response.status_code == 429, (way, response.status_code, response.content[:300])
    assert int(response["Retry-After"]) > 0
    if way in ("staff token", "tenant token"):
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"].startswith("Too many sign-in attempts")
    else:
        assert response["Content-Type"].startswith("text/html")
        assert "Too many sign-in attempts" in response.content.decode()


WAYS = ["django admin", "staff token", "tenant page", "browsable API", "tenant token"]
ACCOUNT = {"django admin": "admin", "staff token": "admin"}


@pytest.mark.parametrize("way", WAYS)
def test_every_way_to_sign_in_is_throttled(way):
    username = ACCOUNT.get(way, "alice")
    for _ in range(LIMIT):
        assert not signed_in(way, attempt(way, username, "wrong-guess"))
    last = attempt(way, username, DEMO_PASSWORD)
    assert_throttled(way, last)


def test_the_django_admin_session_cannot_be_had_by_guessing():
    for _ in range(LIMIT):
        attempt("django admin", "admin", "wrong-guess")
    client = JsonClient(REMOTE_ADDR="203.0.113.7")
    response = client.post(
        "/django-admin/login/", {"username": "admin", "password": DEMO_PASSWORD, "next": "/"}, content_type=FORM
    )
    assert response.status_code == 429
    # Still signed out, on the admin and on the platform API that its session would open.
    assert client.get("/django-admin/").status_code == 302
    assert client.get("/admin/tenants").status_code == 401


@pytest.mark.parametrize(
    "ways",
    [
        ["django admin", "staff token"],
        ["tenant page", "browsable API", "tenant token"],
    ],
)
def test_the_ways_share_one_count_per_account(ways):
    username = ACCOUNT.get(ways[0], "alice")
    for n in range(LIMIT):
        attempt(ways[n % len(ways)], username, "wrong-guess", address=f"198.51.100.{n}")
    for way in ways:
        assert_throttled(way, attempt(way, username, DEMO_PASSWORD, address="198.51.100.200"))


def test_an_account_is_throttled_whatever_the_address():
    for n in range(LIMIT):
        attempt("tenant token", "alice", "wrong-guess", address=f"198.51.100.{n}")
    assert_throttled("tenant token", attempt("tenant token", "alice", DEMO_PASSWORD, address="192.0.2.99"))
    # Another account, from a fresh address, is not held up by alice's.
    assert signed_in("tenant token", attempt("tenant token", "bob", DEMO_PASSWORD, address="192.0.2.98"))


def test_accounts_of_the_same_name_in_two_tenants_are_counted_apart():
    for n in range(LIMIT):
        attempt("tenant token", "alice", "wrong-guess", address=f"198.51.100.{n}")
    response = JsonClient(tenant="globex", REMOTE_ADDR="192.0.2.97").post(
        "/api/auth/token", {"username": "alice", "password": "wrong-guess"}
    )
    assert response.status_code == 401  # globex's "alice" (who does not exist) has her own count


def test_an_address_is_throttled_whatever_the_account_and_the_tenant():
    ways_and_accounts = [("staff token", f"nobody{n}") for n in range(4)]
    ways_and_accounts += [("tenant page", f"ghost{n}") for n in range(3)]
    ways_and_accounts += [("tenant token", f"phantom{n}") for n in range(3)]
    for way, username in ways_and_accounts:
        attempt(way, username, "wrong-guess", address="192.0.2.50")
    assert_throttled("tenant token", attempt("tenant token", "charlie", DEMO_PASSWORD, address="192.0.2.50"))
    # The same account from another address gets in.
    assert signed_in("tenant token", attempt("tenant token", "charlie", DEMO_PASSWORD, address="192.0.2.51"))


def test_the_count_is_not_in_a_worker_processs_memory():
    for _ in range(LIMIT):
        attempt("staff token", "admin", "wrong-guess")
    # A fresh worker process starts with an empty local cache: the count must not live there.
    cache.clear()
    assert_throttled("staff token", attempt("staff token", "admin", DEMO_PASSWORD))


def test_refused_attempts_spend_no_password_hash(monkeypatch):
    from django.contrib.auth.hashers import get_hashers

    for _ in range(LIMIT):
        attempt("staff token", "admin", "wrong-guess")
    hasher = get_hashers()[0]
    calls = []
    original = type(hasher).verify
    monkeypatch.setattr(type(hasher), "verify", lambda self, *args: calls.append(1) or original(self, *args))
    monkeypatch.setattr(type(hasher), "encode", lambda self, *args: calls.append(1) or "x$y")
    for way in WAYS:
        attempt(way, ACCOUNT.get(way, "alice"), DEMO_PASSWORD)
    assert calls == []


@pytest.mark.skipif(not redis_available(), reason="no Redis on 127.0.0.1:6379 (the REDIS_URL path is optional)")
def test_with_redis_url_the_counts_live_in_redis():
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    store = redis.Redis.from_url(url)
    ratelimit._redis.cache_clear()
    try:
        with override_settings(REDIS_URL=url):
            for _ in range(LIMIT):
                attempt("staff token", "admin", "wrong-guess", address="192.0.2.77")
            assert_throttled("staff token", attempt("staff token", "admin", DEMO_PASSWORD, address="192.0.2.77"))
            counts = [int(store.get(key)) for key in store.keys("ratelimit:signin:*")]
            assert sorted(counts) == [LIMIT + 1, LIMIT + 1]  # the account's and the address's
            assert not RateLimitCounter.objects.filter(key__startswith="signin:").exists()
    finally:
        for key in store.keys("ratelimit:signin:*"):
            store.delete(key)
        ratelimit._redis.cache_clear()
