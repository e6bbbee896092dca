"""Reads of the tenant registry."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from psycopg import sql

from tenants import plans
from tenants.ids import is_well_formed_tenant_id
from tenants.models import Domain, Tenant


def get_tenant(tenant_id: str) -> Tenant | None:
    """The tenant with this id, or None. Malformed ids never reach SQL."""
    if not is_well_formed_tenant_id(tenant_id):
        return None
    return Tenant.objects.select_related("plan").filter(pk=tenant_id).first()


def tenant_for_host(host: str) -> Tenant | None:
    domain = Domain.objects.select_related("tenant__plan").filter(domain=host).first()
    return domain.tenant if domain else None


def user_counts(tenant_ids: Iterable[str]) -> dict[str, int]:
    """Number of users in each tenant's schema, in one query however many tenants."""
    ids = [tenant_id for tenant_id in tenant_ids if is_well_formed_tenant_id(tenant_id)]
    if not ids:
        return {}
    parts = [
        sql.SQL("SELECT {id}, count(*) FROM {table}").format(
            id=sql.Literal(tenant_id), table=sql.Identifier(tenant_id, "accounts_tenantuser")
        )
        for tenant_id in ids
    ]
    query = sql.SQL(" UNION ALL ").join(parts)
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection))
        return {tenant_id: count for tenant_id, count in cursor.fetchall()}


def tenant_profile(tenant: Tenant) -> dict:
    """A tenant in the seed's JSON shape."""
    return {
        "id": tenant.id,
        "name": tenant.name,
        "plan": tenant.plan_id,
        "active": tenant.active,
        "created_at": int(tenant.created_at.timestamp()),
        "settings": plans.plan_settings(tenant),
    }


def tenant_detail(tenant: Tenant) -> dict:
    """The profile plus what the platform operator needs to see."""
    return {
        **tenant_profile(tenant),
        "user_count": user_counts([tenant.id]).get(tenant.id, 0),
        "domains": [domain.domain for domain in tenant.domains.order_by("-is_primary", "domain")],
    }
