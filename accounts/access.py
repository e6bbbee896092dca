"""Who is signed in to a tenant, and the admin-role rule: for the API and the pages alike."""

from __future__ import annotations

from accounts.keys import ApiKeyPrincipal
from accounts.models import TenantUser


def tenant_user(user: object) -> TenantUser | None:
    """The active user of the current tenant behind a request, or None (anonymous, staff, deactivated)."""
    return user if isinstance(user, TenantUser) and user.is_active else None


def is_tenant_admin(user: object) -> bool:
    """Tenant admins create, change and delete users and change settings; members only read."""
    signed_in = tenant_user(user)
    return signed_in is not None and signed_in.is_admin


def api_key(user: object) -> ApiKeyPrincipal | None:
    """The API key behind a request, when a key (not a person) made it."""
    return user if isinstance(user, ApiKeyPrincipal) else None


def may_read(user: object) -> bool:
    """Any user of the tenant, and any of its keys (both scopes allow safe methods)."""
    key = api_key(user)
    return tenant_user(user) is not None or (key is not None and key.allows(safe_method=True))


def may_write(user: object) -> bool:
    """Tenant admins, and keys with the ``write`` scope."""
    key = api_key(user)
    return is_tenant_admin(user) or (key is not None and key.allows(safe_method=False))
