"""Two questions every error path asks: is this an API route, and does the client want a page?
And the one answer to a client asking for a representation a route does not have."""

from __future__ import annotations

from collections.abc import Callable

from django.http import Http404, HttpRequest
from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request

# Routes that answer JSON, whatever happens: the tenant API and the platform API.
API_PREFIXES = ("/api", "/admin")


def subtree(*prefixes: str) -> Callable[[str], bool]:
    """A test of whether a path is one of ``prefixes`` or lies below one (one tuple test per call, no loop)."""
    below = tuple(prefix + "/" for prefix in prefixes)
    return lambda path: path in prefixes or path.startswith(below)


is_api_path = subtree(*API_PREFIXES)


def wants_html(request: HttpRequest) -> bool:
    """A person in a browser on a page route; API routes answer JSON even to browsers."""
    if is_api_path(request.path_info):
        return False
    return "text/html" in request.META.get("HTTP_ACCEPT", "")


class StrictContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answering a ``?format=`` no renderer of the route knows with a 400.

    DRF raises Django's ``Http404`` there, which is no answer to a bad query parameter (and
    was a 500 through a handler that expects DRF's own exceptions). The refusal is rendered
    in JSON (``core.errors.api_exception_handler``).
    """

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Http404 as exc:
            known = sorted({renderer.format for renderer in renderers})
            asked = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE, "")
            message = f"'{asked[:20]}' is not one of this route's formats: {', '.join(known)}."
            raise ValidationError({self.settings.URL_FORMAT_OVERRIDE: [message]}) from exc
