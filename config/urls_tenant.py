"""URLs of a tenant (its subdomain, or the public host with X-Tenant-ID)."""

from django.urls import include, path

from accounts import views as pages

handler404 = "api.errors.not_found"
handler500 = "api.errors.server_error"

urlpatterns = [
    path("", include("api.urls")),
    # The browsable API's log-in and log-out links (sessions of this tenant's users).
    path("api-auth/", include("rest_framework.urls")),
    path("", pages.dashboard, name="dashboard"),
    path("login", pages.TenantLoginView.as_view(), name="tenant-login"),
    path("logout", pages.TenantLogoutView.as_view(), name="tenant-logout"),
    path("users", pages.add_user, name="tenant-add-user"),
    path("users/<str:user_id>/role", pages.change_role, name="tenant-change-role"),
    path("users/<str:user_id>/remove", pages.remove_user, name="tenant-remove-user"),
]
