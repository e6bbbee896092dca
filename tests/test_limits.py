"""Plan limits under concurrency, and per-tenant rate limits (real commits, several connections)."""

import threading

import pytest
from django.db import connections
from django.test import override_settings
from django_tenants.utils import schema_context

from accounts.models import TenantUser
from accounts.services import provision_tenant_with_admin
from tenants import ratelimit, services
from tenants.models import RateLimitCounter
from tests.conftest import JsonClient, redis_available

ADMIN = {"username": "boss", "name": "Boss", "password": "boss-password-1"}


def _tenant_with_admin(committed_db, tenant_id: str, **overrides) -> str:
    committed_db.append(tenant_id)
    provision_tenant_with_admin(tenant_id=tenant_id, name=tenant_id.title(), admin=ADMIN)
    if overrides:
        services.update_tenant(tenant_id, overrides)
    credentials = {"username": ADMIN["username"], "password": ADMIN["password"]}
    return JsonClient(tenant=tenant_id).post("/api/auth/token", credentials).json()["token"]


def _in_parallel(count: int, work) -> list:
    barrier = threading.Barrier(count)
    results: list = []

    def run():
        try:
            barrier.wait()
            results.append(work())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_twenty_simultaneous_creates_with_one_seat_left(committed_db):
    # max_users 2: the admin holds one seat, one is left.
    token = _tenant_with_admin(committed_db, "seats", max_users=2, rate_limit_per_minute=0)
    names = iter(range(100))
    lock = threading.Lock()

    def create():
        with lock:
            n = next(names)
        response = JsonClient(tenant="seats", token=token).post("/api/users", {"name": f"Racer {n}"})
        return response.status_code, response.json()

    results = _in_parallel(20, create)
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [403] * 19
    refusals = {body["error"] for status, body in results if status == 403}
    assert refusals == {"User limit reached (2 users on starter plan)"}
    with schema_context("seats"):
        assert TenantUser.objects.count() == 2


def test_simultaneous_demotions_keep_one_admin(committed_db):
    token = _tenant_with_admin(committed_db, "admins", rate_limit_per_minute=0)
    client = JsonClient(tenant="admins", token=token)
    second = client.post("/api/users", {"name": "Second", "role": "admin", "password": "second-pass-1"}).json()
    second_token = JsonClient(tenant="admins").post(
        "/api/auth/token", {"username": second["username"], "password": "second-pass-1"}
    )
    tokens = iter([token, second_token.json()["token"]])
    ids = iter(["1", second["id"]])
    lock = threading.Lock()

    def demote():
        with lock:
            own_token, user_id = next(tokens), next(ids)
        return JsonClient(tenant="admins", token=own_token).patch(f"/api/users/{user_id}", {"role": "member"})

    statuses = sorted(r.status_code for r in _in_parallel(2, demote))
    assert statuses == [200, 409]
    with schema_context("admins"):
        assert TenantUser.objects.filter(role="admin").count() == 1


def test_rate_limit_answers_429_then_resets(committed_db, monkeypatch):
    token = _tenant_with_admin(committed_db, "ratey", rate_limit_per_minute=3)
    clock = [1_800_000_000.0]
    monkeypatch.setattr(ratelimit, "now", lambda: clock[0])
    client = JsonClient(tenant="ratey", token=token)
    assert [client.get("/api/me").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/api/users")
    assert refused.status_code == 429
    assert refused.json() == {"error": "Rate limit exceeded"}
    assert refused["Retry-After"] == "60"
    clock[0] += 30
    assert client.get("/api/me")["Retry-After"] == "30"
    clock[0] += 30  # the next window
    assert client.get("/api/me").status_code == 200
    # Counters of past windows are pruned.
    assert RateLimitCounter.objects.filter(key="ratey").count() == 1


def test_rate_limit_is_per_tenant(committed_db, monkeypatch):
    monkeypatch.setattr(ratelimit, "now", lambda: 1_800_000_100.0)
    first = _tenant_with_admin(committed_db, "noisy", rate_limit_per_minute=2)
    second = _tenant_with_admin(committed_db, "quiet", rate_limit_per_minute=2)
    noisy = JsonClient(tenant="noisy", token=first)
    for _ in range(3):
        noisy.get("/api/me")
    assert noisy.get("/api/me").status_code == 429
    assert JsonClient(tenant="quiet", token=second).get("/api/me").status_code == 200


def test_rate_limit_counts_across_connections(committed_db, monkeypatch):
    monkeypatch.setattr(ratelimit, "now", lambda: 1_800_000_200.0)
    token = _tenant_with_admin(committed_db, "busy", rate_limit_per_minute=10)
    results = _in_parallel(16, lambda: JsonClient(tenant="busy", token=token).get("/api/me").status_code)
    assert sorted(results) == [200] * 10 + [429] * 6


def test_the_plan_sets_the_rate_limit(committed_db):
    token = _tenant_with_admin(committed_db, "planned")
    assert (
        JsonClient(tenant="planned", token=token).get("/api/settings").json()["settings"]["rate_limit_per_minute"] == 60
    )
    services.update_tenant("planned", {"plan": "enterprise"})
    assert (
        JsonClient(tenant="planned", token=token).get("/api/settings").json()["settings"]["rate_limit_per_minute"]
        == 600
    )


@pytest.mark.skipif(not redis_available(), reason="no Redis on 127.0.0.1:6379 (the REDIS_URL path is optional)")
def test_rate_limit_in_redis(committed_db, monkeypatch):
    import redis

    url = "redis://127.0.0.1:6379/15"
    redis.Redis.from_url(url).flushdb()
    ratelimit._redis.cache_clear()
    monkeypatch.setattr(ratelimit, "now", lambda: 1_800_000_300.0)
    token = _tenant_with_admin(committed_db, "redisy", rate_limit_per_minute=2)
    try:
        with override_settings(REDIS_URL=url):
            client = JsonClient(tenant="redisy", token=token)
            assert [client.get("/api/me").status_code for _ in range(3)] == [200, 200, 429]
            assert redis.Redis.from_url(url).get("ratelimit:redisy:1800000300") == b"3"
            assert not RateLimitCounter.objects.filter(key="redisy").exists()
    finally:
        ratelimit._redis.cache_clear()
        redis.Redis.from_url(url).flushdb()
