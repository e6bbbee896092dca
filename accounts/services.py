"""Writes inside one tenant's schema: users, their tokens, the tenant's API keys, the workspace settings.

Every function expects the connection to be on the tenant's schema (a tenant request,
or ``schema_context``), except ``provision_tenant_with_admin``, which makes the schema.
The API, the pages, the platform's provisioning, ``seed_demo`` and the tests all go
through here, so the rules hold and the audit trail is written on every path.
"""

from __future__ import annotations

import datetime

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.text import slugify

from accounts.errors import (
    ApiKeyNotFound,
    InvalidAccountInput,
    LastAdmin,
    PlanGovernedSetting,
    UserLimitReached,
    UsernameTaken,
    UserNotFound,
)
from accounts.inputs import EDITABLE_SETTINGS, PLAN_GOVERNED_SETTINGS
from accounts.models import ApiKey, AuthToken, Role, TenantUser, WorkspaceSettings
from core import audit
from core.audit import SYSTEM, Actor
from core.errors import ServiceError
from core.jobs import services as job_services
from core.jobs.models import Job
from core.models import digest
from core.validation import iana_time_zones
from tenants import services as tenant_services
from tenants.credentials import key_prefix, new_api_key
from tenants.models import Tenant
from tenants.selectors import lock_tenant

WORKSPACE_EXPORT = "workspace.export"

# What the audit trail keeps of a user (never the password).
AUDITED_USER_FIELDS = ("id", "name", "role", "username", "email", "is_active")


def _audited(user: TenantUser) -> dict:
    return model_to_dict(user, fields=AUDITED_USER_FIELDS)


def _free_username(name: str) -> str:
    base = slugify(name).replace("-", ".")[:140] or "user"
    candidate, suffix = base, 1
    while TenantUser.objects.filter(username=candidate).exists():
        suffix += 1
        candidate = f"{base}{suffix}"
    return candidate


def _check_password(password: str, user: TenantUser | None = None) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InvalidAccountInput("Invalid password: " + " ".join(exc.messages), field="password") from exc


def create_user(
    tenant: Tenant,
    *,
    name: str,
    role: str = Role.MEMBER,
    username: str | None = None,
    email: str = "",
    password: str | None = None,
    actor: Actor = SYSTEM,
) -> TenantUser:
    """Add a user to ``tenant``, within its plan's user limit, safely under concurrency.

    Creations of one tenant queue on its locked registry row, and read the limit the
    platform set last under that lock, so N simultaneous creates never overshoot it.
    """
    if password is not None:
        _check_password(password)
    with transaction.atomic():
        locked = lock_tenant(tenant.id)
        limit = locked.limits.max_users
        if TenantUser.objects.count() >= limit:
            raise UserLimitReached(f"User limit reached ({limit} users on {locked.plan_id} plan)")
        user = TenantUser(name=name, role=role, email=email, username=username or _free_username(name))
        if password is None:
            user.set_unusable_password()
        else:
            user.set_password(password)
        try:
            with transaction.atomic():
                user.save(force_insert=True)
        except IntegrityError as exc:
            raise UsernameTaken(f"Username '{user.username}' is taken", field="username") from exc
        audit.record("user.create", actor, f"user:{user.pk}", None, _audited(user))
    return user


def provision_tenant_with_admin(*, admin: dict | None = None, actor: Actor = SYSTEM, **tenant: object) -> Tenant:
    """Provision a tenant (``tenants.services.provision_tenant``) and, in the same unit, its first admin.

    ``admin`` holds username, name, password and optionally email; a refusal of it
    (a weak password, say) leaves no tenant behind and names the field under ``admin``.
    """
    if admin is None:
        return tenant_services.provision_tenant(actor=actor, **tenant)

    def first_admin(new_tenant: Tenant) -> None:
        try:
            create_user(new_tenant, role=Role.ADMIN, actor=actor, **admin)
        except ServiceError as exc:
            detail = {"admin": exc.detail or [str(exc)]}
            raise ServiceError(f"Invalid admin: {exc}", "admin", detail=detail, status=exc.status) from exc

    return tenant_services.provision_tenant(populate=first_admin, actor=actor, **tenant)


def _lock_admins() -> None:
    """Lock the admin rows first, in id order, before the user's own row.

    Two demotions that each locked their own row first then waited for the other's
    deadlocked (PostgreSQL aborted one of them); taken in one order, they queue.
    """
    list(TenantUser.objects.select_for_update().filter(role=Role.ADMIN, is_active=True).order_by("pk"))


def _is_last_admin(user: TenantUser) -> bool:
    """Whether no other active admin remains if ``user`` stops being one (admin rows locked by the caller)."""
    return user.is_admin and not TenantUser.objects.filter(role=Role.ADMIN, is_active=True).exclude(pk=user.pk).exists()


def _locked_user(user_id: int) -> TenantUser:
    user = TenantUser.objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise UserNotFound()
    return user


def update_user(user_id: int, changes: dict, actor: Actor = SYSTEM) -> TenantUser:
    """Change a user's name, role, email, password or activity. A tenant keeps at least one admin."""
    changes = dict(changes)
    demotion = changes.get("role") == Role.MEMBER or changes.get("is_active") is False
    with transaction.atomic():
        if demotion:
            _lock_admins()
        user = _locked_user(user_id)
        if demotion and _is_last_admin(user):
            raise LastAdmin("A tenant must keep at least one admin", field="role")
        before = _audited(user)
        password = changes.pop("password", None)
        for field, value in changes.items():
            setattr(user, field, value)
        if password is not None:
            _check_password(password, user)
            user.set_password(password)
            # A new password ends the old credentials.
            AuthToken.objects.filter(user=user).delete()
        user.save()
        after = {**_audited(user), **({"password_changed": True} if password is not None else {})}
        audit.record("user.update", actor, f"user:{user.pk}", before, after)
    return user


def delete_user(user_id: int, actor: Actor = SYSTEM) -> None:
    with transaction.atomic():
        _lock_admins()
        user = _locked_user(user_id)
        if _is_last_admin(user):
            raise LastAdmin("A tenant must keep at least one admin")
        audit.record("user.delete", actor, f"user:{user.pk}", _audited(user), None)
        user.delete()


def issue_token(user: TenantUser, name: str = "api", *, replace: bool = False) -> str:
    """A new API token for ``user``; returns the raw key, which is stored only as a digest.

    ``replace`` first revokes the user's tokens of the same name (the demo's, on each seed).
    """
    with transaction.atomic():
        if replace:
            AuthToken.objects.filter(user=user, name=name).delete()
        _, raw_key = AuthToken.issue(user=user, name=name)
    return raw_key


# --- API keys ----------------------------------------------------------------------------


def _audited_key(key: ApiKey) -> dict:
    """What the audit trail keeps of a key: never the key, nor its digest."""
    return {
        "id": key.pk,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": list(key.scopes),
        "expires_at": int(key.expires_at.timestamp()) if key.expires_at else None,
    }


def create_api_key(
    tenant: Tenant, *, name: str, scopes: list[str], expires_in_days: int | None = None, actor: Actor = SYSTEM
) -> tuple[ApiKey, str]:
    """A new API key of ``tenant``; returns it with the raw key, shown this once and stored only as a digest."""
    key_id, raw_key = new_api_key(tenant.id)
    expires_at = timezone.now() + datetime.timedelta(days=expires_in_days) if expires_in_days else None
    with transaction.atomic():
        key = ApiKey.objects.create(
            key_id=key_id,
            key_digest=digest(raw_key),
            prefix=key_prefix(tenant.id, key_id),
            name=name,
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
        audit.record("key.create", actor, f"key:{key.pk}", None, _audited_key(key))
    return key, raw_key


def revoke_api_key(key_id: int, actor: Actor = SYSTEM) -> None:
    """Delete a key; every worker refuses it from the commit on (the delete is announced: ``accounts.keys``)."""
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(pk=key_id).first()
        if key is None:
            raise ApiKeyNotFound()
        audit.record("key.revoke", actor, f"key:{key.pk}", _audited_key(key), None)
        key.delete()


# --- Workspace settings -------------------------------------------------------------------


def validate_timezone(value: str) -> None:
    """An IANA name from the tzdata package's list (``localtime`` or ``Factory`` are no place's time)."""
    if value not in iana_time_zones():
        raise InvalidAccountInput(
            f"Invalid timezone: unknown time zone '{value[:64]}', use an IANA name such as Europe/Paris", "timezone"
        )


def editable_settings(workspace: WorkspaceSettings) -> dict:
    return model_to_dict(workspace, fields=EDITABLE_SETTINGS)


def update_workspace_settings(changes: dict, actor: Actor = SYSTEM) -> WorkspaceSettings:
    """Apply tenant-editable settings; plan-governed keys are refused (only the platform changes them)."""
    governed = sorted(set(changes) & set(PLAN_GOVERNED_SETTINGS))
    if governed:
        raise PlanGovernedSetting(
            f"Setting '{governed[0]}' is governed by the plan; only the platform can change it", field=governed[0]
        )
    if "timezone" in changes:
        validate_timezone(changes["timezone"])
    with transaction.atomic():
        current, _ = WorkspaceSettings.objects.select_for_update().get_or_create(pk=1)
        before = editable_settings(current)
        for field, value in changes.items():
            setattr(current, field, value)
        current.save()
        audit.record("settings.update", actor, "settings", before, editable_settings(current))
    return current


def request_workspace_export(tenant: Tenant, actor: Actor = SYSTEM) -> Job:
    """Queue the export of the workspace's own data for its admin (accounts.exports); audited."""
    with transaction.atomic():
        job = job_services.enqueue(WORKSPACE_EXPORT, tenant_id=tenant.id, requested_by=actor.label)
        audit.record("workspace.export", actor, "workspace", None, {"job": job.pk})
    return job
