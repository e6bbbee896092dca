"""URLs of the public host: the platform API, the Django admin and the home page."""

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.routing import route
from tenants import api, views

handler404 = "api.errors.not_found"
handler500 = "api.errors.server_error"

TENANT = r"admin/tenants/(?P<tenant_id>[^/]+)"

urlpatterns = [
    route(r"admin/auth/token", api.StaffTokenView.as_view(), name="platform-token"),
    route(r"admin/tenants", api.TenantCollectionView.as_view(), name="platform-tenants"),
    route(TENANT, api.TenantDetailView.as_view(), name="platform-tenant"),
    route(TENANT + "/events", api.TenantEventsView.as_view(), name="platform-events"),
    route(
        TENANT + "/suspend",
        api.TenantStateView.as_view(active=False),
        name="platform-suspend",
    ),
    route(
        TENANT + "/activate",
        api.TenantStateView.as_view(active=True),
        name="platform-activate",
    ),
    route(r"api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    route(r"api/docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("django-admin/", admin.site.urls),
    path("", views.public_home, name="public-home"),
]
