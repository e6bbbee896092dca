"""The routes of both APIs, declared on routers; ``config`` mounts each on its URL conf."""

from __future__ import annotations

from api import platform_views, tenant_views
from core.routing import Router

platform = Router()
platform.register("admin/auth/token", platform_views.StaffTokenViewSet, basename="platform-token")
platform.register("admin/tenants", platform_views.TenantViewSet, basename="platform-tenant")
platform.register("admin/nodes", platform_views.NodeViewSet, basename="platform-node")

tenant = Router()
tenant.register("api/me", tenant_views.ProfileViewSet, basename="api-me")
tenant.register("api/auth/token", tenant_views.TokenViewSet, basename="api-token")
tenant.register("api/settings", tenant_views.SettingsViewSet, basename="api-settings")
tenant.register("api/users", tenant_views.UserViewSet, basename="api-user")
tenant.register("api/export", tenant_views.ExportViewSet, basename="api-export")
tenant.register("api/events", tenant_views.EventViewSet, basename="api-events")
tenant.register("api/analytics", tenant_views.AnalyticsViewSet, basename="api-analytics")

platform_urlpatterns = platform.urls
tenant_urlpatterns = tenant.urls
