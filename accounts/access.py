"""Who is signed in to a tenant, and the admin-role rule: for the API and the pages alike."""

from __future__ import annotations

from accounts.models import TenantUser


def tenant_user(user: object) -> TenantUser | None:
    """The active user of the current tenant behind a request, or None (anonymous, staff, deactivated)."""
    return user if isinstance(user, TenantUser) and user.is_active else None


def is_tenant_admin(user: object) -> bool:
    """Tenant admins create, change and delete users and change settings; members only read."""
    signed_in = tenant_user(user)
    return signed_in is not None and signed_in.is_admin
