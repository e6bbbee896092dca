"""The registry's scheduled work: purging deleted tenants once their grace period is over."""

from __future__ import annotations

from procrastinate.contrib.django import app

from tenants import services


@app.periodic(cron="17 * * * *", periodic_id="purge-tenants")
@app.task(name="tenants.purge_due", queueing_lock="tenants.purge_due")
def purge_due(timestamp: int) -> list[str]:
    """Hourly: drop the schemas of tenants deleted longer ago than TENANT_DELETE_GRACE_DAYS."""
    return services.purge_due_tenants()
