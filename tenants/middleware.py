"""Request plumbing: tenant resolution (the one place it happens), body limit, request log."""

from __future__ import annotations

import ipaddress
import logging
import sys
import time

from django.conf import settings
from django.core.signals import got_request_exception
from django.db import connection
from django.http import HttpResponse
from django.shortcuts import render

from api.errors import (
    RETRY_AFTER_SECONDS,
    UNAVAILABLE_MESSAGE,
    drop_leaked_transactions,
    is_api_path,
    is_database_unavailable,
    json_error,
    note_database_unavailable,
    transaction_depths,
)
from tenants.cache import tenant_by_host, tenant_by_id

request_log = logging.getLogger("saas.request")

TENANT_HEADER = "X-Tenant-ID"
TENANT_HEADER_META = "HTTP_X_TENANT_ID"
# Platform routes: never tenant-scoped, and absent on tenant hosts.
PLATFORM_PREFIXES = ("/admin", "/django-admin")
# Public pages under /api/ that describe the API rather than serve a tenant.
PUBLIC_API_PATHS = ("/api/schema", "/api/docs")


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def _host_name(request) -> str:
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


def tenant_error(request, status: int, message: str, page_title: str = ""):
    """SPEC 3's JSON error for API clients; a page for a person in a browser."""
    wants_html = "text/html" in request.headers.get("Accept", "")
    if is_api_path(request.path_info) or not wants_html:
        return json_error(message, status)
    return render(
        request,
        "tenant_error.html",
        {"status": status, "title": page_title or message, "message": message},
        status=status,
    )


class TenantResolutionMiddleware:
    """Find the tenant of a request by subdomain or ``X-Tenant-ID`` and select its schema.

    Runs before sessions and authentication, so the tenant errors of SPEC 3 come
    first and the session and user are read from the tenant's own schema.

    On a warm worker this costs no database round trip: the tenant comes from the
    per-process registry cache (``tenants.cache``), and the backend (``tenants.db``)
    sends ``SET search_path`` only when the connection's path differs from the
    tenant's, so a worker serving the same tenant again sends nothing at all.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.public_hosts = frozenset(settings.PUBLIC_HOSTS)

    def __call__(self, request):
        # Every request starts on the public schema, whatever the connection did before.
        connection.set_schema_to_public()
        request.tenant = None
        path = request.path_info
        host = _host_name(request)

        host_tenant = None
        if host not in self.public_hosts:
            host_tenant = tenant_by_host(host)
            if host_tenant is None:
                label = _label_of(host)
                return tenant_error(request, 404, f"Unknown tenant: {_shown(label)}", f'No workspace called "{label}"')

        if _under(path, PLATFORM_PREFIXES):
            if host_tenant is not None:
                return json_error("Not found", 404)
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
            return self.get_response(request)

        # META rather than request.headers, which builds a dict of every header per request.
        header = (request.META.get(TENANT_HEADER_META) or "").strip()
        if host_tenant is not None:
            if header and header != host_tenant.id:
                return json_error(f"{TENANT_HEADER} header does not match the tenant of this host", 400)
            tenant = host_tenant
        elif header:
            tenant = tenant_by_id(header)
            if tenant is None:
                return tenant_error(request, 404, f"Unknown tenant: {_shown(header)}")
        elif path.startswith("/api") and not _under(path, PUBLIC_API_PATHS):
            return json_error(f"Missing {TENANT_HEADER} header", 400)
        else:
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
            return self.get_response(request)

        if not tenant.active:
            return tenant_error(request, 403, "Tenant account is suspended", "This workspace is suspended")

        request.tenant = tenant
        connection.set_tenant(tenant)
        request.urlconf = settings.ROOT_URLCONF
        return self.get_response(request)


class TrustedProxyMiddleware:
    """Honour X-Forwarded-* only when the direct peer is a trusted proxy; drop them otherwise.

    Django would trust X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER) from anyone; here the
    header survives only if it came through a proxy we run, and the client address
    (REMOTE_ADDR, used by throttles and logs) becomes the last untrusted hop.
    """

    FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.networks = [ipaddress.ip_network(entry, strict=False) for entry in settings.TRUSTED_PROXIES]

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def __call__(self, request):
        meta = request.META
        if not self._trusted(meta.get("REMOTE_ADDR", "")):
            for header in self.FORWARDED:
                meta.pop(header, None)
            return self.get_response(request)
        hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        while hops and self._trusted(hops[-1]):
            hops.pop()
        if hops:
            meta["REMOTE_ADDR"] = hops[-1]
        return self.get_response(request)


class BodySizeLimitMiddleware:
    """413 for bodies over MAX_REQUEST_BODY_BYTES, before anything reads them."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.limit = settings.MAX_REQUEST_BODY_BYTES

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error("Invalid Content-Length header", 400)
        if length > self.limit:
            return json_error(f"Request body too large (limit {self.limit} bytes)", 413)
        return self.get_response(request)


class RequestLogMiddleware:
    """One line per request: method, path, status, duration in ms, tenant id."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        tenant = getattr(request, "tenant", None)
        request_log.info(
            "%s %s %s %.1fms tenant=%s",
            request.method,
            request.path,
            response.status_code,
            elapsed_ms,
            tenant.id if tenant is not None else "-",
        )
        return response


_UNAVAILABLE_PAGE = (
    '<!doctype html><html><head><meta charset="utf-8"><title>Temporarily unavailable</title></head>'
    "<body><h1>Temporarily unavailable</h1><p>The service is briefly unavailable. "
    "Please try again in a few seconds.</p></body></html>"
)


def unavailable_response(request) -> HttpResponse:
    """The answer while the database cannot be reached. Built without templates or the
    session, which could themselves need the database."""
    if not is_api_path(request.path_info) and "text/html" in request.headers.get("Accept", ""):
        response = HttpResponse(_UNAVAILABLE_PAGE, status=503)
    else:
        response = json_error(UNAVAILABLE_MESSAGE, 503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _remember_database_failure(sender, request=None, **kwargs) -> None:
    exc = sys.exc_info()[1]
    if request is not None and is_database_unavailable(exc):
        request.database_failure = exc


class DatabaseUnavailableMiddleware:
    """503 ``{"error": "Service temporarily unavailable"}`` when the database is out of reach.

    Django turns an exception in any inner middleware (the tenant lookup, sessions)
    into a 500 before an outer middleware sees it, so this one learns of it from
    ``got_request_exception`` and swaps that 500 for a 503. View exceptions arrive
    through ``process_exception``; DRF views have their own handler (api.errors).
    After every request it also drops a connection whose transaction bookkeeping a
    database failure left open (``drop_leaked_transactions``), so a thread recovers.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        got_request_exception.connect(_remember_database_failure, dispatch_uid="saas-database-unavailable")

    def __call__(self, request):
        depths = transaction_depths()
        try:
            response = self.get_response(request)
        finally:
            drop_leaked_transactions(depths)
        failure = getattr(request, "database_failure", None)
        if failure is not None and response.status_code == 500:
            note_database_unavailable(request, failure)
            return unavailable_response(request)
        return response

    def process_exception(self, request, exception):
        if is_database_unavailable(exception):
            note_database_unavailable(request, exception)
            return unavailable_response(request)
        return None
