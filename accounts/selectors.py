"""Reads inside one tenant's schema."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate

from accounts.errors import UserNotFound
from accounts.models import TenantUser, WorkspaceSettings
from core.models import AuditEvent
from core.validation import parse_id
from tenants.models import Tenant
from tenants.plans import Limits


def users() -> QuerySet[TenantUser]:
    return TenantUser.objects.order_by("id")


def user_by_raw_id(raw_id: str) -> TenantUser:
    """The user a URL segment names in the current tenant; UserNotFound for anything else."""
    pk = parse_id(raw_id)
    user = TenantUser.objects.filter(pk=pk).first() if pk is not None else None
    if user is None:
        raise UserNotFound()
    return user


def get_workspace_settings() -> WorkspaceSettings:
    return WorkspaceSettings.objects.filter(pk=1).first() or WorkspaceSettings()


@dataclass(frozen=True)
class TenantSettings:
    """Every setting of a tenant: the plan-governed limits and the workspace's own choices."""

    tenant: Tenant
    limits: Limits
    workspace: WorkspaceSettings

    @property
    def display_name(self) -> str:
        return self.workspace.display_name or self.tenant.name


def tenant_settings(tenant: Tenant, workspace: WorkspaceSettings | None = None) -> TenantSettings:
    return TenantSettings(tenant=tenant, limits=tenant.limits, workspace=workspace or get_workspace_settings())


def audit_events() -> QuerySet[AuditEvent]:
    """The current tenant's audit events, newest first."""
    return AuditEvent.objects.order_by("-id")


@dataclass(frozen=True)
class UserAnalytics:
    tenant: str
    users_by_role: dict[str, int]
    users_created_per_day: list[dict]
    total_users: int


def user_analytics(tenant: Tenant) -> UserAnalytics:
    """Users per role and users created per day, in ``tenant`` (the current schema's)."""
    by_role = dict(TenantUser.objects.values_list("role").annotate(n=Count("id")).order_by("role"))
    per_day = (
        TenantUser.objects.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(count=Count("id"))
        .order_by("day")
    )
    return UserAnalytics(
        tenant=tenant.id,
        users_by_role={role: by_role.get(role, 0) for role in ("admin", "member")},
        users_created_per_day=[{"date": row["day"], "count": row["count"]} for row in per_day],
        total_users=sum(by_role.values()),
    )
