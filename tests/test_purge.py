"""Purge as production runs it: the tenant's rows committed long before, the purge a transaction of its own.

Apart from tests/test_lifecycle.py, whose tests run inside one test transaction: on a Citus
cluster a worker drops no table written earlier in the same transaction, so there only a
purge of committed data shows that purging works.
"""

from __future__ import annotations

import datetime

from django.utils import timezone
from django_tenants.utils import schema_context

from accounts import services as account_services
from tenants import services
from tenants.models import Tenant, TenantTombstone
from tests.conftest import schema_exists


def test_a_purge_of_committed_data_on_this_database(committed_db, monkeypatch):
    committed_db.append("bygone")
    tenant = services.provision_tenant(tenant_id="bygone", name="Bygone")
    with schema_context("bygone"):
        account_services.issue_token(account_services.create_user(tenant, username="bo", name="Bo", role="admin"))
    services.delete_tenant("bygone")
    later = timezone.now() + datetime.timedelta(days=365)
    monkeypatch.setattr(timezone, "now", lambda: later)
    try:
        assert services.purge_due_tenants() == ["bygone"]
        assert not schema_exists("bygone")
        assert not Tenant.objects.filter(pk="bygone").exists()
        trail = TenantTombstone.objects.get(tenant_id="bygone").audit_trail
        assert [event["action"] for event in trail] == ["tenant.create", "tenant.delete", "tenant.purge"]
    finally:
        TenantTombstone.objects.filter(tenant_id="bygone").delete()
