"""Writes to the tenant registry: provisioning, suspension, reactivation.

The platform API, the Django admin and the management commands all call these
functions, so every path applies the same rules in the same transaction.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.utils import ProgrammingError
from django_tenants.utils import schema_context

from accounts import audit
from accounts.audit import SYSTEM, Actor
from accounts.services import create_user
from tenants import plans, selectors
from tenants.ids import validate_tenant_id
from tenants.models import Domain, Plan, Tenant


class TenantError(Exception):
    """A rule refused the operation; the message is fit for the API client."""


class TenantAlreadyExists(TenantError):
    def __init__(self) -> None:
        super().__init__("Tenant already exists")


class TenantNotFound(TenantError):
    def __init__(self) -> None:
        super().__init__("Tenant not found")


class UnknownPlan(TenantError):
    def __init__(self, plan_id: str) -> None:
        super().__init__(f"Unknown plan: {plan_id}")


def primary_domain_for(tenant_id: str) -> str:
    return f"{tenant_id}.{settings.TENANT_BASE_DOMAIN}"


def create_tenant_schema(tenant: Tenant) -> None:
    """Give the tenant its schema at the current migrations: from the pool of migrated schemas if it has one."""
    from tenants.provisioning import create_schema

    create_schema(tenant)


def provision_tenant(
    *,
    tenant_id: str,
    name: str,
    plan: str = plans.DEFAULT_PLAN,
    created_at: datetime.datetime | None = None,
    admin: dict | None = None,
    actor: Actor = SYSTEM,
) -> Tenant:
    """Register a tenant, create its schema and its primary domain, as one unit.

    ``admin`` (username, name, password, optional email) creates the tenant's
    first admin inside the new schema, in the same unit.

    PostgreSQL's DDL is transactional, so a failure at any step rolls back the
    row, the domain and the schema together. Two simultaneous creates of the same
    id meet at the primary key: the second waits for the first and then fails.
    """
    validate_tenant_id(tenant_id)
    # The registry lives in the public schema; a caller may have left the connection on a tenant's.
    connection.set_schema_to_public()
    with transaction.atomic():
        plan_row = Plan.objects.filter(pk=plan).first()
        if plan_row is None:
            raise UnknownPlan(plan)
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
                create_tenant_schema(tenant)
            audit.record_for_tenant(tenant.id, "tenant.create", actor, None, selectors.tenant_profile(tenant))
            if admin is not None:
                with schema_context(tenant.schema_name):
                    create_user(tenant, role="admin", actor=actor, **admin)
        except ProgrammingError as exc:
            # A schema of that name exists without a registry row (made by hand).
            if getattr(exc.__cause__, "sqlstate", None) == "42P06":
                raise TenantAlreadyExists() from exc
            raise
        finally:
            connection.set_schema_to_public()
    return tenant


# Fields of PATCH /admin/tenants/{id}; the limits are overrides of the plan, null resets to it.
TENANT_OVERRIDES = {
    "max_users": "max_users_override",
    "features": "features_override",
    "rate_limit_per_minute": "rate_limit_override",
}


def _platform_view(tenant: Tenant) -> dict:
    """What the audit trail keeps of a tenant: its profile and the platform's overrides."""
    overrides = {key: getattr(tenant, field) for key, field in TENANT_OVERRIDES.items()}
    return {**selectors.tenant_profile(tenant), "overrides": overrides}


def update_tenant(tenant_id: str, changes: dict, actor: Actor = SYSTEM) -> Tenant:
    """Change a tenant's name, plan or plan overrides (platform only)."""
    connection.set_schema_to_public()
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().select_related("plan").filter(pk=tenant_id).first()
        if tenant is None:
            raise TenantNotFound()
        before = _platform_view(tenant)
        if "plan" in changes:
            plan_row = Plan.objects.filter(pk=changes["plan"]).first()
            if plan_row is None:
                raise UnknownPlan(changes["plan"])
            tenant.plan = plan_row
        if "name" in changes:
            tenant.name = changes["name"]
        for key, field in TENANT_OVERRIDES.items():
            if key in changes:
                setattr(tenant, field, changes[key])
        tenant.save()
        audit.record_for_tenant(tenant.id, "tenant.update", actor, before, _platform_view(tenant))
    return tenant


def set_tenant_active(tenant_id: str, active: bool, actor: Actor = SYSTEM) -> Tenant:
    """Suspend (``active=False``) or reactivate a tenant."""
    connection.set_schema_to_public()
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().select_related("plan").filter(pk=tenant_id).first()
        if tenant is None:
            raise TenantNotFound()
        before = {"active": tenant.active}
        if tenant.active != active:
            tenant.active = active
            tenant.save(update_fields=["active"])
        action = "tenant.activate" if active else "tenant.suspend"
        audit.record_for_tenant(tenant.id, action, actor, before, {"active": tenant.active})
    return tenant
