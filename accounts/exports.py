"""A workspace's own data for its admins (``workspace.export``): readable JSON documents in a zip, no secrets.

``workspace.json`` (the workspace, its plan, settings and domains), ``users.json`` (every user,
without password hashes) and ``audit-events.json`` (the audit trail, oldest first), indented,
with ISO 8601 times; and a ``README.txt`` that says so. Tokens and sessions are left out: they
are credentials, not data. The full archive with everything (``tenants.archive``) is the
platform's.
"""

from __future__ import annotations

import datetime
import json
import zipfile
from collections.abc import Callable, Iterable
from typing import IO

from django.db.models import QuerySet
from django.utils import timezone

from accounts import selectors
from accounts.models import TenantUser
from core.db import read_only_snapshot
from core.models import AuditEvent
from tenants.models import Tenant
from tenants.selectors import domain_names

README = """This is the data of the workspace {name} ({id}), exported on {when} by {who}.

workspace.json     the workspace: name, plan, settings, addresses
users.json         its users: name, username, e-mail, role, when they joined and last signed in
audit-events.json  who changed what in the workspace, and when, oldest first

Times are ISO 8601, in UTC. Passwords, API tokens and sessions are not in the export.
"""


def _when(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _user(user: TenantUser) -> dict:
    return {
        "id": str(user.pk),
        "username": user.username,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "is_active": user.is_active,
        "created_at": _when(user.created_at),
        "last_login": _when(user.last_login),
    }


def _event(event: AuditEvent) -> dict:
    return {
        "id": str(event.pk),
        "created_at": _when(event.created_at),
        "actor": {"kind": event.actor_kind, "name": event.actor},
        "action": event.action,
        "target": event.target,
        "before": event.before,
        "after": event.after,
    }


def _workspace(tenant: Tenant) -> dict:
    current = selectors.tenant_settings(tenant)
    return {
        "id": tenant.id,
        "name": tenant.name,
        "display_name": current.display_name,
        "plan": tenant.plan_id,
        "created_at": _when(tenant.created_at),
        "domains": domain_names(tenant),
        "settings": {
            "max_users": current.limits.max_users,
            "features": list(current.limits.features),
            "rate_limit_per_minute": current.limits.rate_limit_per_minute,
            "timezone": current.workspace.timezone,
            "theme_color": current.workspace.theme_color,
        },
    }


def _write_list(archive: zipfile.ZipFile, name: str, items: Iterable[dict], on_item: Callable[[], None]) -> None:
    """A JSON array, one indented item after the other, without holding the list in memory."""
    entry = zipfile.ZipInfo(name, date_time=timezone.now().timetuple()[:6])
    entry.compress_type = zipfile.ZIP_DEFLATED
    with archive.open(entry, "w") as out:
        out.write(b"[")
        for index, item in enumerate(items):
            out.write((",\n" if index else "\n").encode())
            out.write(json.dumps(item, indent=2, ensure_ascii=False).encode())
            on_item()
        out.write(b"\n]\n")


def write_workspace_export(
    tenant: Tenant, out: IO[bytes], requested_by: str, progress: Callable[[float], None] = lambda percent: None
) -> dict:
    """Write the zip for ``tenant`` (the connection on its schema) from one snapshot; returns what it holds."""
    with read_only_snapshot(), zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        users: QuerySet[TenantUser] = selectors.users()
        events = AuditEvent.objects.order_by("id")
        counts = {"users": users.count(), "audit_events": events.count()}
        total, done = max(1, sum(counts.values())), 0

        def on_item() -> None:
            nonlocal done
            done += 1
            if done % 500 == 0:
                progress(98 * done / total)

        when = timezone.now().isoformat()
        workspace = {**_workspace(tenant), "exported_at": when, "exported_by": requested_by, "counts": counts}
        archive.writestr("README.txt", README.format(name=tenant.name, id=tenant.id, when=when, who=requested_by))
        archive.writestr("workspace.json", json.dumps(workspace, indent=2, ensure_ascii=False) + "\n")
        _write_list(archive, "users.json", (_user(user) for user in users.iterator(2000)), on_item)
        _write_list(archive, "audit-events.json", (_event(event) for event in events.iterator(2000)), on_item)
    return counts
