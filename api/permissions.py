"""Who may do what inside a tenant, and the plan rules checked per request."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.throttling import BaseThrottle

from accounts.models import TenantUser
from tenants import plans, ratelimit


class IsTenantUser(BasePermission):
    """Any signed-in user of this tenant."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, TenantUser) and request.user.is_active


class ReadOrTenantAdmin(IsTenantUser):
    """Members read; tenant admins also write."""

    message = "Tenant admin role required"

    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in SAFE_METHODS or request.user.is_admin


class TenantAdminOnly(IsTenantUser):
    message = "Tenant admin role required"

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and request.user.is_admin


class RequiresFeature(BasePermission):
    """The view's ``required_feature`` must be enabled for the tenant (checked before roles)."""

    def has_permission(self, request, view) -> bool:
        feature = view.required_feature
        if not plans.has_feature(request.tenant, feature):
            raise exceptions.PermissionDenied(
                f"Feature '{feature}' is not enabled on the {request.tenant.plan_id} plan"
            )
        return True


class TenantRateThrottle(BaseThrottle):
    """The tenant's plan rate limit, shared by all its users and all worker processes."""

    def allow_request(self, request, view) -> bool:
        tenant = request.tenant
        decision = ratelimit.hit(tenant.id, plans.limits_for(tenant).rate_limit_per_minute)
        self.retry_after = decision.retry_after
        return decision.allowed

    def wait(self) -> float:
        return self.retry_after
