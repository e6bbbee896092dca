"""The routes of both APIs, declared on routers; ``config`` mounts each on its URL conf."""

from __future__ import annotations

from django.urls import path

from api import platform_views, tenant_views, token_views
from core.routing import Router

platform = Router()
platform.register("admin/auth/token", platform_views.StaffTokenViewSet, basename="platform-token")
platform.register("admin/tenants", platform_views.TenantViewSet, basename="platform-tenant")
platform.register("admin/jobs", platform_views.JobViewSet, basename="platform-job")
platform.register("admin/nodes", platform_views.NodeViewSet, basename="platform-node")

tenant = Router()
tenant.register("api/me", tenant_views.ProfileViewSet, basename="api-me")
tenant.register("api/auth/token", tenant_views.TokenViewSet, basename="api-token")
tenant.register("api/settings", tenant_views.SettingsViewSet, basename="api-settings")
tenant.register("api/users", tenant_views.UserViewSet, basename="api-user")
tenant.register("api/export", tenant_views.ExportViewSet, basename="api-export")
tenant.register("api/exports", tenant_views.WorkspaceExportViewSet, basename="api-exports")
tenant.register("api/events", tenant_views.EventViewSet, basename="api-events")
tenant.register("api/analytics", tenant_views.AnalyticsViewSet, basename="api-analytics")
tenant.register("api/keys", tenant_views.ApiKeyViewSet, basename="api-key")
tenant.register("api/usage", tenant_views.UsageViewSet, basename="api-usage")
tenant.register("api/auth/jwt", tenant_views.JwtViewSet, basename="api-jwt")
tenant.register("api/auth/jwt/refresh", tenant_views.JwtRefreshViewSet, basename="api-jwt-refresh")

# The public keys of service tokens, on every host: verifiers need no tenant to fetch them.
jwks = path(".well-known/jwks.json", token_views.JwksView.as_view(), name="jwks")

platform_urlpatterns = [*platform.urls, jwks]
tenant_urlpatterns = [*tenant.urls, jwks]
