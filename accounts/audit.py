"""The audit trail: who changed what in a tenant, with the values before and after."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django_tenants.utils import schema_context

from accounts.models import AuditEvent, TenantUser


@dataclass(frozen=True)
class Actor:
    kind: str  # "platform" (staff), "tenant" (a tenant user) or "system" (commands)
    name: str

    @classmethod
    def of(cls, user: object) -> Actor:
        if isinstance(user, TenantUser):
            return cls("tenant", user.username)
        if isinstance(user, get_user_model()):
            return cls("platform", user.get_username())
        return SYSTEM


SYSTEM = Actor("system", "system")


def record(action: str, actor: Actor, target: str, before: dict | None = None, after: dict | None = None) -> None:
    """Write an event into the current tenant schema; call it inside the change's transaction."""
    AuditEvent.objects.create(
        actor_kind=actor.kind, actor=actor.name, action=action, target=target, before=before, after=after
    )


def record_for_tenant(tenant_id: str, action: str, actor: Actor, before: dict | None, after: dict | None) -> None:
    """An event about the tenant itself, written from the platform side into the tenant's schema."""
    with schema_context(tenant_id):
        record(action, actor, f"tenant:{tenant_id}", before, after)


def event_json(event: AuditEvent) -> dict:
    return {
        "id": str(event.pk),
        "created_at": event.created_at.timestamp(),
        "actor": {"kind": event.actor_kind, "name": event.actor},
        "action": event.action,
        "target": event.target,
        "before": event.before,
        "after": event.after,
    }
