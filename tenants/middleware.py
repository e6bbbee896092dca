"""Tenant resolution: the one place a request is given its tenant and its schema; the plan's rate limit on pages."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse

from core.errors import error_response, json_error
from core.hosts import host_name
from core.http import subtree
from tenants.credentials import presented
from tenants.models import Tenant
from tenants.ratelimit import count_tenant_request
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


is_platform_path = subtree(*PLATFORM_PREFIXES)
_is_api_path = subtree("/api")
_is_public_api_path = subtree(*PUBLIC_API_PREFIXES)


def needs_tenant(path: str) -> bool:
    """Tenant API routes: on the public host they need X-Tenant-ID."""
    return _is_api_path(path) and not _is_public_api_path(path)


def _label_of(host: str) -> str:
    suffix = "." + settings.TENANT_BASE_DOMAIN
    return host[: -len(suffix)] if host.endswith(suffix) else host


def _shown(value: str, limit: int = 100) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def _reachable(tenant: Tenant | None) -> bool:
    """A deleted tenant is unknown to requests, exactly like one that never existed."""
    return tenant is not None and tenant.deleted_at is None


def _unknown(request: HttpRequest, label: str) -> HttpResponse:
    return error_response(
        request, 404, f"Unknown tenant: {_shown(label)}", f'No workspace called "{_shown(label)}"', UNKNOWN_WORKSPACE
    )


class TenantResolutionMiddleware:
    """Find the tenant of a request by subdomain, ``X-Tenant-ID``, API key or JWT, and select its schema.

    An API key or a JWT (``tenants.credentials``) names its tenant by itself: alone, it is
    enough on the public host; with a subdomain or header of another tenant it is refused
    (401). A key itself is checked later, by authentication, in the tenant's schema.

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
        request.tenant = None
        request.credential = None
        outcome = self._resolve(request)
        # Every request is given its schema here, once, whatever the connection served before:
        # its tenant's, or the public schema for everything else (error answers included).
        if isinstance(outcome, Tenant):
            request.tenant = outcome
            connection.set_tenant(outcome)
            request.urlconf = settings.ROOT_URLCONF
            return self.get_response(request)
        connection.set_schema_to_public()
        if outcome is None:
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
            return self.get_response(request)
        return outcome()  # a refusal, made on the public schema (an error page may render templates)

    def _resolve(self, request: HttpRequest) -> Tenant | Callable[[], HttpResponse] | None:
        """The request's tenant; None for a public route; else what makes the error to answer."""
        path = request.path_info
        host = host_name(request)

        host_tenant = None
        if host not in self.public_hosts:
            host_tenant = tenant_for_host(host)
            if not _reachable(host_tenant):
                return partial(_unknown, request, _label_of(host))

        if is_platform_path(path):
            return partial(json_error, "Not found", 404) if host_tenant is not None else None

        # META rather than request.headers, which builds a dict of every header per request.
        header = (request.META.get(TENANT_HEADER_META) or "").strip()
        tenant_route = needs_tenant(path)
        credential = presented(request) if tenant_route else None
        if host_tenant is not None:
            if header and header != host_tenant.id:
                return partial(json_error, f"{TENANT_HEADER} header does not match the tenant of this host", 400)
            tenant = host_tenant
        elif header:
            tenant = get_tenant(header)
            if not _reachable(tenant):
                return partial(_unknown, request, header)
        elif credential is not None:
            tenant = get_tenant(credential.tenant_id) if credential.tenant_id else None
            if tenant is None:
                return partial(json_error, credential.refusal, 401)
        elif tenant_route:
            return partial(json_error, f"Missing {TENANT_HEADER} header", 400)
        else:
            return None

        if credential is not None and credential.tenant_id != tenant.id:
            # Malformed, or another tenant's: the same answer, which tells nothing about other tenants.
            return partial(json_error, credential.refusal, 401)
        request.credential = credential
        if not tenant.active:
            return partial(
                error_response,
                request,
                403,
                "Tenant account is suspended",
                "This workspace is suspended",
                SUSPENDED_WORKSPACE,
            )
        return tenant


RATE_LIMITED = (
    "Your workspace has made more requests this minute than its plan allows. "
    "Wait a little and try again; if this keeps happening, ask the platform for a larger plan."
)


class TenantRateLimitMiddleware:
    """The plan's requests per minute count every request of a signed-in user of the tenant, pages included.

    Runs after authentication, for the session's user; an API request signed in by token is
    counted by the API's throttle instead (``api.permissions.TenantRateThrottle``), and a
    request is never counted twice (``tenants.ratelimit.count_tenant_request``). Static files
    are served before this middleware and never count. Anonymous requests do not count:
    strangers must not be able to spend a tenant's requests.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if getattr(request, "tenant", None) is not None and user is not None and user.is_authenticated:
            decision = count_tenant_request(request)
            if not decision.allowed:
                response = error_response(request, 429, "Rate limit exceeded", "Too many requests", RATE_LIMITED)
                response["Retry-After"] = str(decision.retry_after)
                return response
        return self.get_response(request)
