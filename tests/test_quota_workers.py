"""Monthly quotas across two gunicorn worker processes and across a restart (real commits)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.db import connection
from django_tenants.utils import schema_context

from accounts import services as account_services
from tenants import metering, services
from tenants.models import UsageCounter
from tests.test_two_workers import get, serving


def metered(committed_db: list[str], tenant_id: str, **overrides) -> dict[str, str]:
    """A committed tenant without a rate limit; the headers of its admin's requests."""
    committed_db.append(tenant_id)
    connection.set_schema_to_public()
    tenant = services.provision_tenant(tenant_id=tenant_id, name=tenant_id.title())
    services.update_tenant(tenant_id, {"rate_limit_per_minute": 0, **overrides})
    with schema_context(tenant_id):
        token = account_services.issue_token(
            account_services.create_user(tenant, username="ops", name="Ops", role="admin")
        )
    return {"X-Tenant-ID": tenant_id, "Authorization": f"Token {token}"}


def burst(port: int, headers: dict[str, str], count: int) -> list[tuple[int, dict]]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: get(port, headers), range(count)))


def workers_in(log: Path) -> set[str]:
    time.sleep(0.05)  # let the access log reach the file
    return {line.split()[0] for line in log.read_text().splitlines() if "/api/me" in line}


def stored(tenant_id: str) -> int:
    row = UsageCounter.objects.filter(tenant_id=tenant_id, period=metering.period_of(time.time())).first()
    return row.requests if row else 0


def test_exactly_the_quota_is_served_by_two_workers(committed_db, tmp_path):
    headers = metered(committed_db, "exact", requests_per_month=25)
    with serving(tmp_path) as (port, log):
        answers = burst(port, headers, 80)
        assert len(workers_in(log)) == 2, "both workers should have served"
    statuses = [status for status, _ in answers]
    assert statuses.count(200) == 25 and statuses.count(429) == 55, statuses
    assert stored("exact") == 25
    UsageCounter.objects.filter(tenant_id="exact").delete()


def test_counts_survive_a_restart(committed_db, tmp_path, monkeypatch):
    # Starter's 10,000 a month: far from the quota, so the workers count in memory and add in batches
    # of 100; with the background flush an hour away, only the batches and the exit add counts.
    monkeypatch.setenv("QUOTA_FLUSH_SECONDS", "3600")
    headers = metered(committed_db, "durable")
    with serving(tmp_path, "first.log") as (port, log):
        assert {status for status, _ in burst(port, headers, 150)} == {200}
        assert len(workers_in(log)) == 2
    # Stopped after the last answer: what was still in memory was added on the way out.
    assert stored("durable") == 150
    with serving(tmp_path, "second.log") as (port, _):
        assert {status for status, _ in burst(port, headers, 50)} == {200}
        usage = get(port, headers)  # one more request, counted too
    assert usage[0] == 200
    assert stored("durable") == 201
    UsageCounter.objects.filter(tenant_id="durable").delete()
