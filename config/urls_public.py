"""URLs of the public host: the platform API, the API's docs, the Django admin and the home page."""

from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api.urls import platform_urlpatterns
from core.routing import route
from tenants import views

handler404 = "core.errors.not_found"
handler500 = "core.errors.server_error"

urlpatterns = [
    *platform_urlpatterns,
    route(r"api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    route(r"api/docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("django-admin/", admin.site.urls),
    path("", views.public_home, name="public-home"),
]
