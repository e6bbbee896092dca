"""URLs of the public host: the platform API, the API's docs, the Django admin and the home page."""

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api.urls import platform_urlpatterns
from core.routing import route
from tenants import views

handler400 = "core.errors.bad_request"
handler403 = "core.errors.permission_denied"
handler404 = "core.errors.not_found"
handler500 = "core.errors.server_error"

urlpatterns = [
    *platform_urlpatterns,
    route(r"api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    # A page: no OPTIONS metadata (it has no JSON renderer to show it with).
    route(r"api/docs", SpectacularSwaggerView.as_view(url_name="api-schema", metadata_class=None), name="api-docs"),
    path("django-admin/", admin.site.urls),
    path("", views.public_home, name="public-home"),
]
