"""Request plumbing that knows no tenant rule: trusted proxies, the body size limit, the request log."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.errors import json_error

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


class BodySizeLimitMiddleware:
    """413 for bodies over MAX_REQUEST_BODY_BYTES, before anything reads them."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.limit = settings.MAX_REQUEST_BODY_BYTES

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error("Invalid Content-Length header", 400)
        if length > self.limit:
            return json_error(f"Request body too large (limit {self.limit} bytes)", 413)
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
