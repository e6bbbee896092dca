"""Request plumbing that knows no tenant rule: trusted proxies, malformed requests, the body size limit,
refusals raised outside DRF, the request log."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.core.exceptions import DisallowedHost, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse

from core.errors import Invalid, client_error, refusal_response
from core.hosts import host_name

request_log = logging.getLogger("saas.request")

GetResponse = Callable[[HttpRequest], HttpResponse]


class TrustedProxyMiddleware:
    """Honour X-Forwarded-* only when the direct peer is a trusted proxy; drop them otherwise.

    Django would trust X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER) from anyone; here the
    header survives only if it came through a proxy we run, and the client address
    (REMOTE_ADDR, used by throttles and logs) becomes the last untrusted hop.
    """

    FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.networks = [ipaddress.ip_network(entry, strict=False) for entry in settings.TRUSTED_PROXIES]

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def __call__(self, request: HttpRequest) -> HttpResponse:
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


class MalformedRequestMiddleware:
    """400 for a request no part of the project should ever read: refused before anything parses it.

    - a Host that is not allowed (or empty, or not a host name at all);
    - a NUL byte in the path, the query string, a header or a cookie: PostgreSQL refuses NUL
      in text, so such a value would fail wherever it reached the database (a session key, a
      filter, an id), and no honest client sends one;
    - more query parameters than DATA_UPLOAD_MAX_NUMBER_FIELDS.

    The answer is JSON on API routes and a page for a person in a browser, as every error.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = self.problem(request)
        if problem is not None:
            return refusal_response(request, Invalid(problem))
        return self.get_response(request)

    @staticmethod
    def problem(request: HttpRequest) -> str | None:
        try:
            host_name(request)
        except DisallowedHost:
            return "Invalid Host header"
        if "\x00" in request.path_info or b"\x00" in unquote_to_bytes(request.META.get("QUERY_STRING", "")):
            return "Invalid request: NUL byte in the URL"
        for name, value in request.META.items():
            if (name.startswith("HTTP_") or name == "CONTENT_TYPE") and isinstance(value, str) and "\x00" in value:
                header = name.removeprefix("HTTP_").replace("_", "-").title()
                return f"Invalid request: NUL byte in the {header} header"
        try:
            request.GET  # noqa: B018 (parsing the query string is the check)
        except TooManyFieldsSent:
            return f"Too many query parameters (at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS})"
        return None


class RefusalMiddleware:
    """A client's error raised by a view outside DRF (a page, the Django admin) answers as that error.

    A ``ServiceError`` that escapes a page (the sign-in throttle's, raised from the middle of
    Django's sign-in form), or a value the database refused, becomes its 4xx page (JSON on
    API routes) instead of a 500. DRF views have their own handler (``core.errors``).
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        refusal = client_error(exception)
        return refusal_response(request, refusal) if refusal is not None else None


class BodySizeLimitMiddleware:
    """413 for bodies over MAX_REQUEST_BODY_BYTES, or the route's own UPLOAD_BODY_LIMITS, before anything reads them."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.limit = settings.MAX_REQUEST_BODY_BYTES
        # Upload routes, by path without a trailing slash, and the larger bodies they take.
        self.upload_limits = dict(getattr(settings, "UPLOAD_BODY_LIMITS", {}))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return refusal_response(request, Invalid("Invalid Content-Length header"))
        limit = self.upload_limits.get(request.path_info.rstrip("/"), self.limit)
        if length > limit:
            return refusal_response(request, Invalid(f"Request body too large (limit {limit} bytes)", status=413))
        return self.get_response(request)


class RequestLogMiddleware:
    """One line per request: method, path, status, duration in ms, tenant id."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
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
