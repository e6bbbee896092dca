"""URLs of the public host: the platform API, the Django admin and the home page."""

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api.errors import not_found, server_error  # noqa: F401 - Django looks these names up here
from config.routing import route
from tenants import api, views

handler404 = "api.errors.not_found"
handler500 = "api.errors.server_error"

urlpatterns = [
    route(r"admin/auth/token", api.StaffTokenView.as_view(), name="platform-token"),
    route(r"admin/tenants", api.TenantCollectionView.as_view(), name="platform-tenants"),
    route(r"admin/tenants/(?P<tenant_id>[^/]+)", api.TenantDetailView.as_view(), name="platform-tenant"),
    route(r"admin/tenants/(?P<tenant_id>[^/]+)/events", api.TenantEventsView.as_view(), name="platform-events"),
    route(r"admin/tenants/(?P<tenant_id>[^/]+)/suspend", api.TenantSuspendView.as_view(), name="platform-suspend"),
    route(r"admin/tenants/(?P<tenant_id>[^/]+)/activate", api.TenantActivateView.as_view(), name="platform-activate"),
    route(r"api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    route(r"api/docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("django-admin/", admin.site.urls),
    path("", views.public_home, name="public-home"),
]
