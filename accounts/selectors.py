"""Reads inside one tenant's schema, in the shapes the API shows."""

from __future__ import annotations

from accounts.audit import event_json
from accounts.errors import UserNotFound
from accounts.models import AuditEvent, TenantUser, WorkspaceSettings
from api.validation import parse_id
from tenants import plans
from tenants.models import Tenant


def user_json(user: TenantUser) -> dict:
    """The seed's shape (string ids), plus the fields a real client needs. Never the password."""
    return {
        "id": str(user.pk),
        "name": user.name,
        "role": user.role,
        "username": user.username,
        "email": user.email,
        "created_at": int(user.created_at.timestamp()),
    }


def user_by_raw_id(raw_id: str) -> TenantUser:
    """The user a URL segment names in the current tenant; UserNotFound for anything else."""
    pk = parse_id(raw_id)
    user = TenantUser.objects.filter(pk=pk).first() if pk is not None else None
    if user is None:
        raise UserNotFound("User not found")
    return user


def get_workspace_settings() -> WorkspaceSettings:
    return WorkspaceSettings.objects.filter(pk=1).first() or WorkspaceSettings()


def editable_settings(workspace: WorkspaceSettings) -> dict:
    return {
        "display_name": workspace.display_name,
        "timezone": workspace.timezone,
        "theme_color": workspace.theme_color,
    }


def settings_document(tenant: Tenant, workspace: WorkspaceSettings | None = None) -> dict:
    """All settings of a tenant as the API shows them: plan-governed and tenant-editable."""
    workspace = workspace or get_workspace_settings()
    limits = plans.limits_for(tenant)
    return {
        "max_users": limits.max_users,
        "features": list(limits.features),
        "rate_limit_per_minute": limits.rate_limit_per_minute,
        **editable_settings(workspace),
        "display_name": workspace.display_name or tenant.name,
    }


def events_page(limit: int, offset: int) -> tuple[list[dict], int]:
    """The current tenant's audit events, newest first, and how many there are in all."""
    events = AuditEvent.objects.order_by("-id")
    return [event_json(event) for event in events[offset : offset + limit]], events.count()
