"""Two questions every error path asks: is this an API route, and does the client want a page?"""

from __future__ import annotations

from django.http import HttpRequest

# Routes that answer JSON, whatever happens: the tenant API and the platform API.
API_PREFIXES = ("/api", "/admin")


def is_api_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES)


def wants_html(request: HttpRequest) -> bool:
    """A person in a browser on a page route; API routes answer JSON even to browsers."""
    if is_api_path(request.path_info):
        return False
    return "text/html" in request.META.get("HTTP_ACCEPT", "")
