"""Monthly request quotas and usage (SPEC 8): plans, overrides, exact refusals, the month boundary, reports."""

from __future__ import annotations

import calendar
import time

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from accounts.services import provision_tenant_with_admin
from tenants import metering, services
from tenants.models import Plan, Tenant, UsageCounter
from tests.conftest import JsonClient, redis_available

pytestmark = pytest.mark.django_db

ADMIN = {"username": "boss", "name": "Boss", "password": "boss-password-1"}
# 2031-01-31 23:59:00 UTC: a minute before a month starts.
END_OF_JANUARY = calendar.timegm((2031, 1, 31, 23, 59, 0))


def metered_tenant(tenant_id: str, **overrides) -> JsonClient:
    """A tenant without a rate limit (and with ``overrides``), and a client of its admin."""
    provision_tenant_with_admin(tenant_id=tenant_id, name=tenant_id.title(), admin=ADMIN)
    services.update_tenant(tenant_id, {"rate_limit_per_minute": 0, **overrides})
    token = JsonClient(tenant=tenant_id).post("/api/auth/token", {k: ADMIN[k] for k in ("username", "password")})
    return JsonClient(tenant=tenant_id, token=token.json()["token"])


@pytest.fixture
def clock(monkeypatch):
    now = [float(END_OF_JANUARY)]
    monkeypatch.setattr(metering.time, "time", lambda: now[0])
    return now


def test_plans_have_monthly_quotas_and_the_platform_overrides_them(staff, charlie, alice):
    assert Plan.objects.get(pk="starter").requests_per_month == 10_000
    assert Plan.objects.get(pk="enterprise").requests_per_month is None
    assert charlie.get("/api/settings").json()["settings"]["requests_per_month"] == 10_000
    assert alice.get("/api/settings").json()["settings"]["requests_per_month"] is None
    assert staff.patch("/admin/tenants/globex", {"requests_per_month": 50}).status_code == 200
    assert charlie.get("/api/settings").json()["settings"]["requests_per_month"] == 50
    assert Tenant.objects.get(pk="globex").requests_per_month_override == 50
    assert staff.patch("/admin/tenants/globex", {"requests_per_month": None}).status_code == 200
    assert charlie.get("/api/settings").json()["settings"]["requests_per_month"] == 10_000
    for bad in (-1, "100", 1.5, True, 10**13):
        assert staff.patch("/admin/tenants/globex", {"requests_per_month": bad}).status_code == 400, bad
    # Tenants cannot change it themselves.
    refused = charlie.put("/api/settings", {"requests_per_month": 1_000_000})
    assert refused.status_code == 403 and "governed by the plan" in refused.json()["error"]


def test_exactly_the_quota_is_served_then_429_until_next_month(clock):
    client = metered_tenant("quotaco", requests_per_month=3)
    assert [client.get("/api/me").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/api/users")
    assert refused.status_code == 429
    assert refused.json() == {"error": "Monthly request quota exceeded (3 requests on starter plan)"}
    assert refused["Retry-After"] == "60"  # the month ends in a minute
    clock[0] += 30
    assert client.get("/api/me")["Retry-After"] == "30"
    clock[0] += 30  # 2031-02-01 00:00:00 UTC
    assert [client.get("/api/me").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert dict(UsageCounter.objects.filter(tenant_id="quotaco").values_list("period", "requests")) == {
        "2031-01": 3,
        "2031-02": 3,
    }


def test_raising_the_quota_lets_requests_through_at_once(clock):
    client = metered_tenant("raiseco", requests_per_month=1)
    assert [client.get("/api/me").status_code for _ in range(2)] == [200, 429]
    services.update_tenant("raiseco", {"requests_per_month": 2})
    assert [client.get("/api/me").status_code for _ in range(2)] == [200, 429]
    services.update_tenant("raiseco", {"requests_per_month": None})  # the starter plan's 10,000
    assert client.get("/api/me").status_code == 200


def test_a_zero_quota_refuses_everything(clock):
    client = metered_tenant("zeroco", requests_per_month=0)
    assert client.get("/api/me").json() == {"error": "Monthly request quota exceeded (0 requests on starter plan)"}


def test_far_from_the_quota_requests_are_counted_without_a_write_each(clock):
    client = metered_tenant("batchco")  # starter: 10,000 a month, far away
    with override_settings(QUOTA_BATCH=5):
        assert client.get("/api/me").status_code == 200  # the first: counted at once, learns the total
        with CaptureQueriesContext(connection) as context:
            statuses = [client.get("/api/me").status_code for _ in range(9)]
        assert statuses == [200] * 9
    writes = [q["sql"] for q in context.captured_queries if "tenants_usagecounter" in q["sql"]]
    assert len(writes) == 1, writes  # one upsert for a batch of 5, four still in memory
    assert UsageCounter.objects.get(tenant_id="batchco").requests == 6
    metering.meter.flush_all()
    assert UsageCounter.objects.get(tenant_id="batchco").requests == 10


def test_a_flush_adds_the_counts_of_every_tenant_in_one_statement(clock):
    tenants = ("flush-a", "flush-b", "flush-c")
    for tenant_id in tenants:
        metered_tenant(tenant_id)
    metering.meter.flush_all()  # whatever signing in left

    def counted() -> dict[str, int]:
        rows = UsageCounter.objects.filter(period="2031-01", tenant_id__in=tenants)
        return {tenant_id: 0 for tenant_id in tenants} | dict(rows.values_list("tenant_id", "requests"))

    before = counted()
    for tenant_id, count in zip(tenants, (4, 5, 6), strict=True):
        for _ in range(count):
            metering.meter.hit(tenant_id, 10_000, "2031-01")
    with CaptureQueriesContext(connection) as context:
        metering.meter.flush_all()
    assert len(context.captured_queries) == 1
    after = counted()
    assert {tenant_id: after[tenant_id] - before[tenant_id] for tenant_id in tenants} == dict(
        zip(tenants, (4, 5, 6), strict=True)
    )
    assert [metering.meter.pending((tenant_id, "2031-01")) for tenant_id in tenants] == [0, 0, 0]


def test_a_failed_flush_keeps_the_counts_for_the_next(clock, monkeypatch):
    metered_tenant("keepco")
    metering.meter.flush_all()  # whatever signing in left
    UsageCounter.objects.filter(tenant_id="keepco").delete()
    for _ in range(4):
        metering.meter.hit("keepco", 10_000, "2031-01")
    metering.meter.flush_all()
    for _ in range(3):
        metering.meter.hit("keepco", 10_000, "2031-01")
    statement = metering._ADD_MANY
    monkeypatch.setattr(metering, "_ADD_MANY", "SELECT no_such_function(%s, %s, %s)")
    with pytest.raises(Exception, match="no_such_function"), transaction.atomic():
        metering.meter.flush_all()
    assert metering.meter.pending(("keepco", "2031-01")) == 3
    monkeypatch.setattr(metering, "_ADD_MANY", statement)
    metering.meter.flush_all()
    assert UsageCounter.objects.get(tenant_id="keepco", period="2031-01").requests == 7


def test_near_the_quota_every_request_is_counted_in_the_database(clock):
    client = metered_tenant("nearco", requests_per_month=1500)
    # 900 left: within QUOTA_SYNC_MARGIN (1000) of the quota.
    UsageCounter.objects.create(tenant_id="nearco", period="2031-01", requests=600)
    with CaptureQueriesContext(connection) as context:
        assert [client.get("/api/me").status_code for _ in range(3)] == [200] * 3
    writes = [q["sql"] for q in context.captured_queries if "tenants_usagecounter" in q["sql"]]
    assert len(writes) == 3
    assert UsageCounter.objects.get(tenant_id="nearco").requests == 603


def test_unauthenticated_and_rate_limited_requests_do_not_count(clock):
    client = metered_tenant("fairco", requests_per_month=2)
    for _ in range(5):
        assert JsonClient(tenant="fairco").get("/api/me").status_code == 401
        assert JsonClient(tenant="fairco", token="nope").get("/api/me").status_code == 401
    assert [client.get("/api/me").status_code for _ in range(3)] == [200, 200, 429]


# --- Usage reports ----------------------------------------------------------------------------------


def test_usage_for_tenant_admins_and_staff(staff, clock):
    client = metered_tenant("usageco", requests_per_month=100)
    for _ in range(4):
        client.get("/api/me")
    body = client.get("/api/usage").json()
    assert set(body) == {
        "tenant",
        "period",
        "requests",
        "requests_per_month",
        "users",
        "max_users",
        "storage_bytes",
    }
    assert (body["tenant"], body["period"], body["requests"], body["requests_per_month"]) == (
        "usageco",
        "2031-01",
        5,  # four, and this one
        100,
    )
    assert (body["users"], body["max_users"]) == (1, 10)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'usageco' AND c.relkind IN ('r', 'm', 'S')"
        )
        assert body["storage_bytes"] == cursor.fetchone()[0] > 0
    platform = staff.get("/admin/tenants/usageco/usage")
    assert platform.status_code == 200
    assert {**platform.json(), "requests": 5} == body  # the platform's look is not a tenant request
    assert staff.get("/admin/tenants/nobody/usage").status_code == 404
    assert JsonClient(tenant="acme").get("/api/usage").status_code == 401


def test_members_cannot_read_usage(bob, alice):
    assert bob.get("/api/usage").json() == {"error": "Tenant admin role required"}
    assert alice.get("/api/usage").json()["requests_per_month"] is None


def test_usage_counts_this_processes_uncounted_requests(clock):
    client = metered_tenant("liveco")
    for _ in range(3):
        client.get("/api/me")
    assert client.get("/api/usage").json()["requests"] == 4


def test_the_dashboard_shows_meters_and_the_admin_columns(staff, clock):
    from tests.test_pages import signed_in

    metered_tenant("meterco", requests_per_month=40)
    browser = JsonClient(host="meterco.localhost")
    assert browser.login(username=ADMIN["username"], password=ADMIN["password"])
    page = browser.get("/").content.decode()
    assert 'id="meter-requests" min="0" max="40"' in page
    assert '<span id="usage-users">1 of 10</span>' in page
    assert 'id="usage-storage"' in page and "bytes" not in page.split('id="usage-storage">')[1][:3]
    member_page = signed_in("bob").get("/").content.decode()
    assert 'id="usage"' not in member_page


def test_django_admin_lists_usage_columns(clock):
    metered_tenant("adminco", requests_per_month=7)
    operator = JsonClient()
    connection.set_schema_to_public()
    assert operator.login(username="admin", password="demo-pass-2024")
    page = operator.get("/django-admin/tenants/tenant/").content.decode()
    for column in ("requests_this_month", "monthly_quota", "storage"):
        assert f'class="column-{column}' in page
    assert '<td class="field-monthly_quota">7</td>' in page
    assert '<td class="field-monthly_quota">unlimited</td>' in page  # acme, enterprise


# --- Redis -------------------------------------------------------------------------------------------


@pytest.mark.skipif(not redis_available(), reason="no Redis on 127.0.0.1:6379 (the REDIS_URL path is optional)")
def test_quota_in_redis(clock):
    import redis

    url = "redis://127.0.0.1:6379/8"
    store = redis.Redis.from_url(url)
    store.delete("usage:redisco:2031-01", "usage:redisco:2031-02")
    metering._redis.cache_clear()
    client = metered_tenant("redisco", requests_per_month=2)
    try:
        with override_settings(REDIS_URL=url):
            from tenants import ratelimit

            ratelimit._redis.cache_clear()
            assert [client.get("/api/me").status_code for _ in range(3)] == [200, 200, 429]
            assert store.get("usage:redisco:2031-01") == b"2"
            assert 0 < store.ttl("usage:redisco:2031-01") <= metering.REDIS_TTL_SECONDS
            assert client.get("/api/usage").status_code == 429
            clock[0] += 60
            assert client.get("/api/usage").json()["requests"] == 1
        assert not UsageCounter.objects.filter(tenant_id="redisco").exists()
    finally:
        metering._redis.cache_clear()
        store.delete("usage:redisco:2031-01", "usage:redisco:2031-02")


def test_period_and_next_month():
    assert metering.period_of(END_OF_JANUARY) == "2031-01"
    assert metering.next_month_start(END_OF_JANUARY) == END_OF_JANUARY + 60
    december = calendar.timegm((2030, 12, 15, 0, 0, 0))
    assert metering.next_month_start(december) == calendar.timegm((2031, 1, 1, 0, 0, 0))


def test_the_month_is_right_on_both_sides_of_its_edges_whatever_was_asked_before():
    """period_of remembers the month it formatted last; moments before, in and after it all get their own."""
    february = END_OF_JANUARY + 60
    moments = [END_OF_JANUARY, february - 1, february, END_OF_JANUARY, february + 86400 * 28, 0.0, february - 0.001]
    expected = ["2031-01", "2031-01", "2031-02", "2031-01", "2031-03", "1970-01", "2031-01"]
    assert [metering.period_of(moment) for moment in moments] == expected
    assert metering.period_of(time.time()) == time.strftime("%Y-%m", time.gmtime())
