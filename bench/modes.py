"""The two comparison set-ups of the benchmark, selected as Django settings modules.

* ``bench.modes.Baseline`` (settings ``bench.settings_baseline``): tenancy switched off,
  the physical limit of this stack: every request is served for one fixed tenant, found
  once per process, with no host or header parsing and no lookup at all, and no monthly
  metering either (``unmetered``), so that overhead_ratio includes the quotas' cost.
* ``bench.settings_stock``: django-tenants' own ``TenantMainMiddleware`` (a Domain lookup
  per request) on its stock backend (``SET search_path`` per request).
"""

from __future__ import annotations

import os

from django.conf import settings
from django.db import connection


class BaselineTenantMiddleware:
    """Serves every request as BENCH_TENANT, loaded once per process."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.tenant = None

    def __call__(self, request):
        if self.tenant is None:
            from tenants.models import Tenant

            self.tenant = Tenant.objects.select_related("plan").get(pk=os.environ["BENCH_TENANT"])
        request.tenant = self.tenant
        if connection.schema_name != self.tenant.schema_name:
            connection.set_tenant(self.tenant)
        request.urlconf = settings.ROOT_URLCONF
        return self.get_response(request)


def unmetered() -> None:
    """Every request admitted and nothing counted: monthly quotas switched off (baseline only)."""
    from tenants import metering

    metering.hit = lambda tenant_id, quota, now=None: metering.Decision(True, 0)
