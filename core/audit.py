"""The audit trail: who changed what, with the values before and after.

Every service that writes calls ``record`` inside its own transaction, whoever called the
service (the API, the pages, the Django admin, a command), so an event exists exactly when
its change does.
"""

from __future__ import annotations

from dataclasses import dataclass

from django_tenants.utils import schema_context

from core.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    kind: str  # "platform" (staff), "tenant" (a tenant user) or "system" (commands, jobs)
    name: str

    @classmethod
    def of(cls, user: object) -> Actor:
        """The actor behind a request's user: platform staff, a tenant user, or the system."""
        if user is None or not getattr(user, "is_authenticated", False):
            return SYSTEM
        return cls("platform" if getattr(user, "is_staff", False) else "tenant", user.get_username())


SYSTEM = Actor("system", "system")


def record(action: str, actor: Actor, target: str, before: dict | None = None, after: dict | None = None) -> None:
    """Write an event into the current schema; call it inside the change's transaction."""
    AuditEvent.objects.create(
        actor_kind=actor.kind, actor=actor.name, action=action, target=target, before=before, after=after
    )


def record_in_schema(
    schema: str, action: str, actor: Actor, target: str, before: dict | None, after: dict | None
) -> None:
    """An event written from outside the schema it belongs to (the platform acting on a tenant)."""
    with schema_context(schema):
        record(action, actor, target, before, after)
