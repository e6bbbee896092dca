"""Tenant resolution: the one place a request is given its tenant and its schema."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse

from core.errors import error_response, json_error
from tenants.selectors import get_tenant, tenant_for_host

TENANT_HEADER = "X-Tenant-ID"
TENANT_HEADER_META = "HTTP_X_TENANT_ID"
# Platform routes: never tenant-scoped, and absent on tenant hosts.
PLATFORM_PREFIXES = ("/admin", "/django-admin")
# Routes under /api/ that describe the API rather than serve a tenant.
PUBLIC_API_PREFIXES = ("/api/schema", "/api/docs")

UNKNOWN_WORKSPACE = (
    "There is no workspace at this address. Check the spelling of the subdomain, "
    "or ask the person who invited you for your workspace's address."
)
SUSPENDED_WORKSPACE = (
    "This workspace is suspended: nobody can sign in to it or use its API until the platform "
    "reactivates it. If you run this workspace, contact the platform's support."
)


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def is_platform_path(path: str) -> bool:
    return _under(path, PLATFORM_PREFIXES)


def needs_tenant(path: str) -> bool:
    """Tenant API routes: on the public host they need X-Tenant-ID."""
    return _under(path, ("/api",)) and not _under(path, PUBLIC_API_PREFIXES)


def _host_name(request: HttpRequest) -> str:
    """The request's host without port, lower-cased (validated against ALLOWED_HOSTS)."""
    host = request.get_host().lower()
    if host.startswith("["):
        return host[: host.index("]") + 1]
    return host.rsplit(":", 1)[0]


def _label_of(host: str) -> str:
    suffix = "." + settings.TENANT_BASE_DOMAIN
    return host[: -len(suffix)] if host.endswith(suffix) else host


def _shown(value: str, limit: int = 100) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def _unknown(request: HttpRequest, label: str) -> HttpResponse:
    return error_response(
        request, 404, f"Unknown tenant: {_shown(label)}", f'No workspace called "{_shown(label)}"', UNKNOWN_WORKSPACE
    )


class TenantResolutionMiddleware:
    """Find the tenant of a request by subdomain or ``X-Tenant-ID`` and select its schema.

    Runs before sessions and authentication, so the tenant errors of SPEC 3 come
    first and the session and user are read from the tenant's own schema.

    On a warm worker this costs no database round trip: the tenant comes from the
    registry through its per-process cache (``tenants.selectors``), and the backend
    (``tenants.db``) sends ``SET search_path`` only when the connection's path differs
    from the tenant's, so a worker serving the same tenant again sends nothing at all.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.public_hosts = frozenset(settings.PUBLIC_HOSTS)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Every request starts on the public schema, whatever the connection did before.
        connection.set_schema_to_public()
        request.tenant = None
        path = request.path_info
        host = _host_name(request)

        host_tenant = None
        if host not in self.public_hosts:
            host_tenant = tenant_for_host(host)
            if host_tenant is None:
                return _unknown(request, _label_of(host))

        if is_platform_path(path):
            if host_tenant is not None:
                return json_error("Not found", 404)
            return self._public(request)

        # META rather than request.headers, which builds a dict of every header per request.
        header = (request.META.get(TENANT_HEADER_META) or "").strip()
        if host_tenant is not None:
            if header and header != host_tenant.id:
                return json_error(f"{TENANT_HEADER} header does not match the tenant of this host", 400)
            tenant = host_tenant
        elif header:
            tenant = get_tenant(header)
            if tenant is None:
                return _unknown(request, header)
        elif needs_tenant(path):
            return json_error(f"Missing {TENANT_HEADER} header", 400)
        else:
            return self._public(request)

        if not tenant.active:
            return error_response(
                request, 403, "Tenant account is suspended", "This workspace is suspended", SUSPENDED_WORKSPACE
            )
        request.tenant = tenant
        connection.set_tenant(tenant)
        request.urlconf = settings.ROOT_URLCONF
        return self.get_response(request)

    def _public(self, request: HttpRequest) -> HttpResponse:
        request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
        return self.get_response(request)
