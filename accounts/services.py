"""Writes inside one tenant's schema: users, their tokens, the workspace settings.

Every function expects the connection to be on the tenant's schema (a tenant
request, or ``schema_context``). The API, the pages, the platform's provisioning
and the tests all go through here, so the rules hold on every path.
"""

from __future__ import annotations

import zoneinfo

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts import audit
from accounts.audit import SYSTEM, Actor
from accounts.errors import (
    AccountError,
    LastAdmin,
    PlanGovernedSetting,
    UserLimitReached,
    UsernameTaken,
    UserNotFound,
)
from accounts.models import AuthToken, Role, TenantUser, WorkspaceSettings
from accounts.selectors import editable_settings, user_json
from tenants import plans
from tenants.models import Tenant


def _lock_tenant(tenant_id: str) -> Tenant:
    """Lock the tenant's registry row: user creations of one tenant queue here, one at a time.

    Reading the plan under the same lock also means a create sees the limit the
    platform set last, even if the request started before the change.
    """
    return Tenant.objects.select_for_update().select_related("plan").get(pk=tenant_id)


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
        raise AccountError("Invalid password: " + " ".join(exc.messages), field="password") from exc


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
    """Add a user to ``tenant``, within its plan's user limit, safely under concurrency."""
    if password is not None:
        _check_password(password)
    with transaction.atomic():
        locked = _lock_tenant(tenant.id)
        limit = plans.limits_for(locked).max_users
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
        audit.record("user.create", actor, f"user:{user.pk}", None, user_json(user))
    return user


def _lock_admins() -> None:
    """Lock the admin rows first, in id order, before the user's own row.

    Two demotions that each locked their own row first then waited for the other's
    deadlocked (PostgreSQL aborted one of them); taken in one order, they queue.
    """
    list(TenantUser.objects.select_for_update().filter(role=Role.ADMIN, is_active=True).order_by("pk"))


def _admins_left_after(user: TenantUser) -> int:
    """How many admins remain if ``user`` stops being one; locks the admin rows meanwhile."""
    admins = list(TenantUser.objects.select_for_update().filter(role=Role.ADMIN, is_active=True))
    return len([admin for admin in admins if admin.pk != user.pk])


def update_user(user_id: int, changes: dict, actor: Actor = SYSTEM) -> TenantUser:
    """Change a user's name, role, email or password. A tenant keeps at least one admin."""
    changes = dict(changes)
    with transaction.atomic():
        if changes.get("role") == Role.MEMBER:
            _lock_admins()
        user = TenantUser.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise UserNotFound("User not found")
        if changes.get("role") == Role.MEMBER and user.role == Role.ADMIN and _admins_left_after(user) == 0:
            raise LastAdmin("A tenant must keep at least one admin", field="role")
        before = user_json(user)
        password = changes.pop("password", None)
        for field, value in changes.items():
            setattr(user, field, value)
        if password is not None:
            _check_password(password, user)
            user.set_password(password)
            # A new password ends the old credentials.
            AuthToken.objects.filter(user=user).delete()
        user.save()
        after = {**user_json(user), **({"password_changed": True} if password is not None else {})}
        audit.record("user.update", actor, f"user:{user.pk}", before, after)
    return user


def delete_user(user_id: int, actor: Actor = SYSTEM) -> None:
    with transaction.atomic():
        _lock_admins()
        user = TenantUser.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise UserNotFound("User not found")
        if user.role == Role.ADMIN and _admins_left_after(user) == 0:
            raise LastAdmin("A tenant must keep at least one admin")
        audit.record("user.delete", actor, f"user:{user.pk}", user_json(user), None)
        user.delete()


# --- Workspace settings -------------------------------------------------------------------

EDITABLE_SETTINGS = ("display_name", "timezone", "theme_color")
PLAN_GOVERNED_SETTINGS = ("max_users", "features", "rate_limit_per_minute")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise AccountError(
            f"Invalid timezone: unknown time zone '{value[:64]}', use an IANA name such as Europe/Paris", "timezone"
        )


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
