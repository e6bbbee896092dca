"""Writes to the tenant registry: provisioning, changes by the platform, suspension, reactivation.

The platform API, the Django admin, the management commands and the tests call these
functions, so every path applies the same rules in the same transaction and leaves the
same audit event in the tenant's schema.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.utils import ProgrammingError
from django_tenants.utils import schema_context

from core import audit
from core.audit import SYSTEM, Actor
from tenants import citus, plans
from tenants.errors import (
    AlreadyOnNode,
    InvalidTenantId,
    MoveRunning,
    NotDistributed,
    NotOnCitus,
    TenantAlreadyExists,
    TenantNotFound,
    UnknownNode,
    UnknownPlan,
)
from tenants.ids import validate_tenant_id
from tenants.models import Domain, Plan, Tenant
from tenants.provisioning import create_schema
from tenants.selectors import get_tenant, lock_tenant


def primary_domain_for(tenant_id: str) -> str:
    return f"{tenant_id}.{settings.TENANT_BASE_DOMAIN}"


def _plan(plan_id: str) -> Plan:
    plan = Plan.objects.filter(pk=plan_id).first()
    if plan is None:
        raise UnknownPlan(plan_id)
    return plan


def audited_view(tenant: Tenant) -> dict:
    """What the audit trail keeps of a tenant: its profile and the platform's overrides."""
    return {
        "id": tenant.id,
        "name": tenant.name,
        "plan": tenant.plan_id,
        "active": tenant.active,
        "created_at": int(tenant.created_at.timestamp()),
        "overrides": plans.overrides_of(tenant),
    }


def _record(tenant: Tenant, action: str, actor: Actor, before: dict | None, after: dict | None) -> None:
    audit.record_in_schema(tenant.schema_name, action, actor, f"tenant:{tenant.id}", before, after)


def provision_tenant(
    *,
    tenant_id: str,
    name: str,
    plan: str = plans.DEFAULT_PLAN,
    created_at: datetime.datetime | None = None,
    populate: Callable[[Tenant], None] | None = None,
    actor: Actor = SYSTEM,
) -> Tenant:
    """Register a tenant, create its schema and its primary domain, as one unit.

    ``populate(tenant)`` runs last, in the new tenant's schema and in the same unit (the
    first admin of ``accounts.services.provision_tenant_with_admin``); if it raises,
    nothing of the tenant is left.

    PostgreSQL's DDL is transactional, so a failure at any step rolls back the row, the
    domain and the schema together. Two simultaneous creates of the same id meet at the
    primary key: the second waits for the first and then fails with TenantAlreadyExists.
    """
    try:
        validate_tenant_id(tenant_id)
    except ValidationError as exc:
        raise InvalidTenantId(exc.messages[0]) from exc
    # The registry lives in the public schema; a caller may have left the connection on a tenant's.
    connection.set_schema_to_public()
    with transaction.atomic():
        plan_row = _plan(plan)
        if Tenant.objects.filter(pk=tenant_id).exists():
            raise TenantAlreadyExists()
        tenant = Tenant(id=tenant_id, name=name, plan=plan_row)
        if created_at is not None:
            tenant.created_at = created_at
        try:
            with transaction.atomic():
                tenant.save(force_insert=True)
                Domain.objects.create(domain=primary_domain_for(tenant_id), tenant=tenant, is_primary=True)
        except IntegrityError as exc:
            raise TenantAlreadyExists() from exc
        try:
            with transaction.atomic():
                create_schema(tenant)
            _record(tenant, "tenant.create", actor, None, audited_view(tenant))
            if populate is not None:
                with schema_context(tenant.schema_name):
                    populate(tenant)
        except ProgrammingError as exc:
            # A schema of that name exists without a registry row (made by hand).
            if getattr(exc.__cause__, "sqlstate", None) == "42P06":
                raise TenantAlreadyExists() from exc
            raise
        finally:
            connection.set_schema_to_public()
    return tenant


def update_tenant(tenant_id: str, changes: dict, actor: Actor = SYSTEM) -> Tenant:
    """Change a tenant's name, plan, creation time or plan overrides (platform only).

    ``changes`` may hold ``name``, ``plan`` (a plan id), ``created_at`` and the keys of
    ``plans.OVERRIDE_FIELDS`` (None returns a value to the plan's).
    """
    connection.set_schema_to_public()
    with transaction.atomic():
        tenant = lock_tenant(tenant_id)
        before = audited_view(tenant)
        if "plan" in changes:
            tenant.plan = _plan(changes["plan"])
        for field in ("name", "created_at"):
            if field in changes:
                setattr(tenant, field, changes[field])
        for key, field in plans.OVERRIDE_FIELDS.items():
            if key in changes:
                setattr(tenant, field, changes[key])
        tenant.save()
        _record(tenant, "tenant.update", actor, before, audited_view(tenant))
    return tenant


def set_tenant_active(tenant_id: str, active: bool, actor: Actor = SYSTEM) -> Tenant:
    """Suspend (``active=False``) or reactivate a tenant."""
    connection.set_schema_to_public()
    with transaction.atomic():
        tenant = lock_tenant(tenant_id)
        before = {"active": tenant.active}
        if tenant.active != active:
            tenant.active = active
            tenant.save(update_fields=["active"])
        _record(tenant, "tenant.activate" if active else "tenant.suspend", actor, before, {"active": tenant.active})
    return tenant


# Advisory lock class of moves, beside the schema pool's (tenants.provisioning).
_LOCK_CLASS_MOVE = 0x5EEF


def move_tenant(tenant_id: str, node: str, actor: Actor = SYSTEM) -> tuple[str, str]:
    """Move a tenant's schema to another Citus worker while the tenant stays in use; (from, to).

    Citus copies the schema with logical replication and pauses the tenant's writes only
    for the final catch-up (``force_logical``). The move is a transaction of its own, which
    also holds a lock on the tenant's name, so a second move of the same tenant is refused
    at once rather than queued. The audit event (written in the tenant's schema, on its new
    node) follows in a transaction of its own once the move has committed: the move's
    transaction holds no writes of ours.
    """
    connection.set_schema_to_public()
    tenant = get_tenant(tenant_id)
    if tenant is None:
        raise TenantNotFound()
    if not citus.enabled(connection):
        raise NotOnCitus()
    with transaction.atomic(), connection.cursor() as cursor:
        workers = citus.worker_nodes(cursor)
        if node not in workers:
            raise UnknownNode(node, list(workers))
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", [_LOCK_CLASS_MOVE, tenant.schema_name])
        if not cursor.fetchone()[0]:
            raise MoveRunning()
        source = citus.schema_nodes(cursor, [tenant.schema_name]).get(tenant.schema_name)
        if source is None:
            raise NotDistributed()
        if source == node:
            raise AlreadyOnNode(node)
        citus.move_schema(cursor, tenant.schema_name, workers[node])
    with transaction.atomic():
        _record(tenant, "tenant.move", actor, {"node": source}, {"node": node})
    return source, node
