"""Reads of the tenant registry: the one door to it, with the per-process cache inside."""

from __future__ import annotations

from collections.abc import Iterable

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from psycopg import sql

from tenants import citus
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
