"""URLs of a tenant (its subdomain, or the public host with X-Tenant-ID)."""

from django.urls import include, path

handler404 = "api.errors.not_found"
handler500 = "api.errors.server_error"

urlpatterns = [
    path("", include("api.urls")),
]
