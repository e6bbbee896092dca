"""Reads of the tenant registry: the one door to it, with the per-process cache inside."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django_tenants.utils import schema_context
from psycopg import sql

from core.models import AuditEvent
from tenants import citus, metering
from tenants.cache import read_through
from tenants.errors import NotOnCitus, TenantNotFound
from tenants.ids import is_well_formed_tenant_id
from tenants.models import Domain, Tenant


def _load_tenant(tenant_id: str) -> Tenant | None:
    return Tenant.objects.select_related("plan").filter(pk=tenant_id).first()


def _load_tenant_for_host(host: str) -> Tenant | None:
    domain = Domain.objects.select_related("tenant__plan").filter(domain=host).first()
    return domain.tenant if domain else None


def get_tenant(tenant_id: str) -> Tenant | None:
    """The tenant with this id, or None. Malformed ids never reach SQL."""
    if not is_well_formed_tenant_id(tenant_id):
        return None
    return read_through(_load_tenant, tenant_id=tenant_id)


def tenant_for_host(host: str) -> Tenant | None:
    """The tenant a host name (one of its domains) routes to, or None."""
    return read_through(_load_tenant_for_host, host=host)


def lock_tenant(tenant_id: str) -> Tenant:
    """The tenant's registry row, locked until the caller's transaction ends; TenantNotFound if none.

    Writes that must see the latest limits or state (user creations, platform changes)
    queue here, one at a time per tenant.
    """
    tenant = Tenant.objects.select_for_update().select_related("plan").filter(pk=tenant_id).first()
    if tenant is None:
        raise TenantNotFound()
    return tenant


def all_tenants() -> QuerySet[Tenant]:
    return Tenant.objects.select_related("plan").order_by("created_at", "id")


def user_counts(tenant_ids: Iterable[str]) -> dict[str, int]:
    """Rows of the tenant user model (settings.TENANT_USER_MODEL) in each tenant's schema, in one query."""
    ids = [tenant_id for tenant_id in tenant_ids if is_well_formed_tenant_id(tenant_id)]
    if not ids:
        return {}
    table = apps.get_model(settings.TENANT_USER_MODEL)._meta.db_table
    parts = [
        sql.SQL("SELECT {id}, count(*) FROM {table}").format(
            id=sql.Literal(tenant_id), table=sql.Identifier(tenant_id, table)
        )
        for tenant_id in ids
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL(" UNION ALL ").join(parts).as_string(cursor.connection))
        return {tenant_id: count for tenant_id, count in cursor.fetchall()}


def domain_names(tenant: Tenant) -> list[str]:
    """The tenant's host names, primary first."""
    return [domain.domain for domain in tenant.domains.order_by("-is_primary", "domain")]


def tenant_node(tenant: Tenant) -> str | None:
    """The Citus worker (``host:port``) holding the tenant's schema; None on a single PostgreSQL server."""
    if not citus.enabled(connection):
        return None
    with connection.cursor() as cursor:
        return citus.schema_nodes(cursor, [tenant.schema_name]).get(tenant.schema_name)


def nodes() -> list[dict]:
    """The Citus workers with the number of tenants each holds and their bytes; NotOnCitus on a single server."""
    if not citus.enabled(connection):
        raise NotOnCitus()
    schemas = list(Tenant.objects.values_list("schema_name", flat=True))
    with connection.cursor() as cursor:
        usage = citus.node_usage(cursor, schemas)
    return [{"node": node, "tenants": count, "bytes": size} for node, count, size in usage]


def tenant_details(tenant: Tenant) -> Tenant:
    """The tenant with what the platform operator sees besides its profile: users, domains, placement."""
    tenant.user_count = user_counts([tenant.id]).get(tenant.id, 0)
    tenant.domain_names = domain_names(tenant)
    node = tenant_node(tenant)
    tenant.placement = {"node": node} if node else None
    return tenant


def schema_sizes(tenant_ids: Iterable[str]) -> dict[str, int]:
    """Bytes on disk of each tenant's schema (tables with their indexes and TOAST, sequences), in one query."""
    ids = [tenant_id for tenant_id in tenant_ids if is_well_formed_tenant_id(tenant_id)]
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname, coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_namespace n "
            "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'm', 'S') "
            "WHERE n.nspname = ANY(%s) GROUP BY n.nspname",
            [ids],
        )
        return {schema: int(size) for schema, size in cursor.fetchall()}


@dataclass(frozen=True)
class Usage:
    """What a tenant used this month against its plan: requests, users and storage."""

    tenant: str
    period: str
    requests: int
    requests_per_month: int | None
    users: int
    max_users: int
    storage_bytes: int

    @property
    def requests_percent(self) -> float | None:
        return None if not self.requests_per_month else min(100.0, 100 * self.requests / self.requests_per_month)


def usages(tenants: list[Tenant], now: float | None = None) -> dict[str, Usage]:
    """The usage of each tenant this month (UTC), in a few queries whatever their number."""
    period = metering.period_of(time.time() if now is None else now)
    ids = [tenant.id for tenant in tenants]
    requests = metering.requests_in(ids, period)
    users = user_counts(ids)
    sizes = schema_sizes(ids)
    return {
        tenant.id: Usage(
            tenant=tenant.id,
            period=period,
            requests=requests.get(tenant.id, 0),
            requests_per_month=tenant.limits.requests_per_month,
            users=users.get(tenant.id, 0),
            max_users=tenant.limits.max_users,
            storage_bytes=sizes.get(tenant.id, 0),
        )
        for tenant in tenants
    }


def usage(tenant: Tenant, now: float | None = None) -> Usage:
    return usages([tenant], now)[tenant.id]


def platform_events(tenant: Tenant) -> list[dict]:
    """The platform's audit events about the tenant itself (not its users'), oldest first, as plain data."""
    with schema_context(tenant.schema_name):
        events = AuditEvent.objects.filter(target=f"tenant:{tenant.id}").order_by("id")
        return [
            {
                "created_at": event.created_at.timestamp(),
                "actor": {"kind": event.actor_kind, "name": event.actor},
                "action": event.action,
                "target": event.target,
                "before": event.before,
                "after": event.after,
            }
            for event in events
        ]
