"""Who may call what: platform staff, tenant users and admins, and the plan rules checked per request."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.access import api_key, is_tenant_admin, may_read, may_write, tenant_user
from core.errors import RateLimited
from tenants import metering, plans, ratelimit

ADMIN_ROLE_REQUIRED = "Tenant admin role required"
WRITE_SCOPE_REQUIRED = "API key lacks the 'write' scope"
NOT_FOR_KEYS = "API keys cannot manage API keys"


def _refuse_key_without_write(request: Request) -> None:
    if api_key(request.user) is not None:
        raise exceptions.PermissionDenied(WRITE_SCOPE_REQUIRED)


class IsPlatformStaff(BasePermission):
    message = "Platform staff only"

    def has_permission(self, request: Request, view: object) -> bool:
        user = request.user
        return isinstance(user, get_user_model()) and user.is_active and user.is_staff


class IsTenantUser(BasePermission):
    """Any signed-in user of this tenant."""

    def has_permission(self, request: Request, view: object) -> bool:
        return tenant_user(request.user) is not None


class ReadOrTenantAdmin(IsTenantUser):
    """Members and API keys read; tenant admins and keys with the ``write`` scope also write."""

    message = ADMIN_ROLE_REQUIRED

    def has_permission(self, request: Request, view: object) -> bool:
        if request.method in SAFE_METHODS:
            return may_read(request.user)
        if may_write(request.user):
            return True
        _refuse_key_without_write(request)
        return False


class TenantAdminOnly(IsTenantUser):
    """Tenant admins; API keys within their scopes (a key is the tenant's, made by an admin)."""

    message = ADMIN_ROLE_REQUIRED

    def has_permission(self, request: Request, view: object) -> bool:
        if is_tenant_admin(request.user):
            return True
        key = api_key(request.user)
        if key is not None and key.allows(safe_method=request.method in SAFE_METHODS):
            return True
        _refuse_key_without_write(request)
        return False


class TenantAdminInPerson(IsTenantUser):
    """A tenant admin, signed in as a person: what an API key can never do (manage keys)."""

    message = ADMIN_ROLE_REQUIRED

    def has_permission(self, request: Request, view: object) -> bool:
        if api_key(request.user) is not None:
            raise exceptions.PermissionDenied(NOT_FOR_KEYS)
        return is_tenant_admin(request.user)


class RequiresFeature(BasePermission):
    """The view's ``required_feature`` must be enabled for the tenant (checked before roles)."""

    def has_permission(self, request: Request, view: object) -> bool:
        feature = view.required_feature
        if not plans.has_feature(request.tenant, feature):
            raise exceptions.PermissionDenied(
                f"Feature '{feature}' is not enabled on the {request.tenant.plan_id} plan"
            )
        return True


class TenantRateThrottle(BaseThrottle):
    """The tenant's plan rate limit, then its monthly quota: shared by all its users, keys and worker processes.

    A request signed in by session was counted against the rate limit already, with the
    pages, by ``tenants.middleware.TenantRateLimitMiddleware``; it is not counted twice.
    A request refused by the rate limit does not count against the month's quota.
    """

    def allow_request(self, request: Request, view: object) -> bool:
        decision = ratelimit.count_tenant_request(request._request)
        tenant = request.tenant
        limits = tenant.limits
        self.retry_after = decision.retry_after
        if not decision.allowed:
            return False
        monthly = metering.hit(tenant.id, limits.requests_per_month)
        if not monthly.allowed:
            raise RateLimited(
                f"Monthly request quota exceeded ({limits.requests_per_month} requests on {tenant.plan_id} plan)",
                monthly.retry_after,
            )
        return True

    def wait(self) -> float:
        return self.retry_after
