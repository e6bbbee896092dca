"""Who may call what: platform staff, tenant users and admins, and the plan rules checked per request."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from accounts.access import is_tenant_admin, tenant_user
from tenants import plans, ratelimit

ADMIN_ROLE_REQUIRED = "Tenant admin role required"


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
    """Members read; tenant admins also write."""

    message = ADMIN_ROLE_REQUIRED

    def has_permission(self, request: Request, view: object) -> bool:
        if request.method in SAFE_METHODS:
            return super().has_permission(request, view)
        return is_tenant_admin(request.user)


class TenantAdminOnly(IsTenantUser):
    message = ADMIN_ROLE_REQUIRED

    def has_permission(self, request: Request, view: object) -> bool:
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
    """The tenant's plan rate limit, shared by all its users and all worker processes."""

    def allow_request(self, request: Request, view: object) -> bool:
        tenant = request.tenant
        decision = ratelimit.hit(tenant.id, tenant.limits.rate_limit_per_minute)
        self.retry_after = decision.retry_after
        return decision.allowed

    def wait(self) -> float:
        return self.retry_after
