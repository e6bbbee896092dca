"""URLs of a tenant (its subdomain, or the public host with X-Tenant-ID)."""

from django.urls import include, path

from accounts import views as pages
from api.urls import tenant_urlpatterns

handler404 = "core.errors.not_found"
handler500 = "core.errors.server_error"

urlpatterns = [
    *tenant_urlpatterns,
    # The browsable API's log-in and log-out links (DRF's names; sessions of this tenant's users).
    path(
        "api-auth/",
        include(
            (
                [
                    path(
                        "login/",
                        pages.ThrottledLoginView.as_view(template_name="rest_framework/login.html"),
                        name="login",
                    ),
                    path("logout/", pages.TenantLogoutView.as_view(next_page=None), name="logout"),
                ],
                "rest_framework",
            )
        ),
    ),
    path("", pages.dashboard, name="dashboard"),
    path("login", pages.TenantLoginView.as_view(), name="tenant-login"),
    path("logout", pages.TenantLogoutView.as_view(), name="tenant-logout"),
    path("users", pages.add_user, name="tenant-add-user"),
    path("settings", pages.update_settings, name="tenant-settings"),
    path("users/<str:user_id>/role", pages.change_role, name="tenant-change-role"),
    path("users/<str:user_id>/remove", pages.remove_user, name="tenant-remove-user"),
]
