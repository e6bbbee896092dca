"""The tenant's own pages on its host: sign-in, dashboard, user management, sign-out.

Input is validated by the API's serializers and written by ``accounts.services``,
so a form refuses exactly what the API refuses, with the same message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.forms.utils import ErrorDict
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts import selectors, services
from accounts.access import is_tenant_admin, tenant_user
from accounts.inputs import EDITABLE_SETTINGS, SettingsUpdateSerializer, UserCreateSerializer, UserUpdateSerializer
from accounts.models import Role, TenantUser
from accounts.throttling import LoginRateThrottle
from core.audit import Actor
from core.errors import ServiceError, first_error

# The page lists this many users; the API pages through any number (a platform override may allow thousands).
SHOWN_USERS = 200


class ThrottledLoginView(auth_views.LoginView):
    """Django's sign-in form, with the API's login throttle; on a tenant schema only TenantUserBackend answers."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        throttle = LoginRateThrottle()
        if not throttle.allow_request(request, self):
            wait = int(throttle.wait() or 60)
            # Show the message without validating the form: validating would check the password.
            form = self.get_form()
            form._errors, form.cleaned_data = ErrorDict(), {}
            form.add_error(None, f"Too many sign-in attempts. Try again in {wait} seconds.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)


class TenantLoginView(ThrottledLoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True
    next_page = "dashboard"


class TenantLogoutView(auth_views.LogoutView):
    next_page = "tenant-login"


def _dashboard_context(request: HttpRequest, user: TenantUser) -> dict:
    tenant = request.tenant
    limits = tenant.limits
    users = list(selectors.users()[:SHOWN_USERS])
    count = len(users) if len(users) < SHOWN_USERS else selectors.users().count()
    return {
        "tenant": tenant,
        "me": user,
        "users": users,
        "user_count": count,
        "more_users": count - len(users),
        "limits": limits,
        "at_limit": count >= limits.max_users,
        "roles": Role.choices,
        "form": {"role": Role.MEMBER},
        "settings_form": services.editable_settings(selectors.get_workspace_settings()),
        "error_field": "",
    }


def _render_dashboard(request: HttpRequest, user: TenantUser, status: int = 200, **extra: object) -> HttpResponse:
    return render(request, "accounts/dashboard.html", {**_dashboard_context(request, user), **extra}, status=status)


def _refuse(request: HttpRequest, user: TenantUser, message: str, status: int, **extra: object) -> HttpResponse:
    """Show the dashboard again with the error, under the status the API would answer."""
    return _render_dashboard(request, user, status=status, error=message, **extra)


def _form_data(request: HttpRequest, fields: tuple[str, ...]) -> dict[str, str]:
    """The submitted fields, without blank optional ones (the API treats absent and blank alike there)."""
    return {name: request.POST[name] for name in fields if request.POST.get(name, "") != ""}


def _to_sign_in() -> HttpResponse:
    return redirect(f"{reverse('tenant-login')}?next={reverse('dashboard')}")


AdminAction = Callable[..., HttpResponse]


def admin_action(view: AdminAction) -> AdminAction:
    """A form post only tenant admins may make; the view gets the signed-in admin after the request."""

    @require_POST
    @functools.wraps(view)
    def checked(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        user = tenant_user(request.user)
        if user is None:
            return _to_sign_in()
        if not is_tenant_admin(user):
            return _refuse(request, user, "Tenant admin role required", 403)
        return view(request, user, *args, **kwargs)

    return checked


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    user = tenant_user(request.user)
    if user is None:
        return _to_sign_in()
    return _render_dashboard(request, user)


@admin_action
def add_user(request: HttpRequest, me: TenantUser) -> HttpResponse:
    data = _form_data(request, ("name", "username", "email", "role", "password"))
    serializer = UserCreateSerializer(data=data)
    if not serializer.is_valid():
        field, message = first_error(serializer.errors)
        return _refuse(request, me, message, 400, form=data, error_field=field)
    try:
        created = services.create_user(request.tenant, **serializer.validated_data, actor=Actor.of(me))
    except ServiceError as exc:
        return _refuse(request, me, str(exc), exc.status, form=data, error_field=exc.field or "")
    messages.success(request, f"Added {created.name} ({created.username}) as {created.role}.")
    return redirect("dashboard")


@admin_action
def change_role(request: HttpRequest, me: TenantUser, user_id: str) -> HttpResponse:
    serializer = UserUpdateSerializer(data=_form_data(request, ("role",)))
    if not serializer.is_valid():
        _, message = first_error(serializer.errors)
        return _refuse(request, me, message, 400)
    try:
        target = selectors.user_by_raw_id(user_id)
        changed = services.update_user(target.pk, serializer.validated_data, actor=Actor.of(me))
    except ServiceError as exc:
        return _refuse(request, me, str(exc), exc.status)
    messages.success(request, f"{changed.name} is now {changed.role}.")
    return redirect("dashboard")


@admin_action
def remove_user(request: HttpRequest, me: TenantUser, user_id: str) -> HttpResponse:
    try:
        target = selectors.user_by_raw_id(user_id)
        services.delete_user(target.pk, actor=Actor.of(me))
    except ServiceError as exc:
        return _refuse(request, me, str(exc), exc.status)
    if target.pk == me.pk:
        # The signed-in user removed themselves: their session now points at nobody.
        return redirect("tenant-login")
    messages.success(request, f"Removed {target.name} ({target.username}).")
    return redirect("dashboard")


@admin_action
def update_settings(request: HttpRequest, me: TenantUser) -> HttpResponse:
    """The workspace's own settings (display name, theme colour, time zone); the plan's are not editable here."""
    # All three fields are always on the form; a blank display name means "use the tenant's name".
    data = {name: request.POST[name] for name in EDITABLE_SETTINGS if name in request.POST}
    serializer = SettingsUpdateSerializer(data=data)
    if not serializer.is_valid():
        field, message = first_error(serializer.errors)
        return _refuse(request, me, message, 400, settings_form=data, error_field=f"settings.{field}")
    try:
        services.update_workspace_settings(serializer.validated_data, actor=Actor.of(me))
    except ServiceError as exc:
        return _refuse(request, me, str(exc), exc.status, settings_form=data, error_field=f"settings.{exc.field}")
    messages.success(request, "Workspace settings saved.")
    return redirect("dashboard")
