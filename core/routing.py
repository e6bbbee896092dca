"""URLs that answer with and without a trailing slash, for every method (as the seed's curl examples need)."""

from __future__ import annotations

from django.urls import URLPattern, re_path
from rest_framework.routers import Route, SimpleRouter

OPTIONAL_SLASH = "/?"


def route(pattern: str, view: object, name: str | None = None) -> URLPattern:
    """A URL for a plain view; ``pattern`` is a regular expression without anchors or trailing slash."""
    return re_path(rf"^{pattern}{OPTIONAL_SLASH}$", view, name=name)


class Router(SimpleRouter):
    """DRF's router with an optional trailing slash, and singletons.

    A viewset that declares ``singleton = True`` is one resource at its prefix, with no
    id in the URL (``/api/settings``, ``/api/me``): GET is ``retrieve``, PUT ``update``,
    PATCH ``partial_update``, POST ``create`` and DELETE ``destroy``, for whichever of
    those it defines.
    """

    singleton_routes = [
        Route(
            url=r"^{prefix}{trailing_slash}$",
            mapping={
                "get": "retrieve",
                "put": "update",
                "patch": "partial_update",
                "post": "create",
                "delete": "destroy",
            },
            name="{basename}",
            detail=False,
            initkwargs={"suffix": "Instance"},
        )
    ]

    def __init__(self) -> None:
        super().__init__()
        # DRF takes trailing_slash as a flag ("/" or ""); the optional form is set on the instance.
        self.trailing_slash = OPTIONAL_SLASH

    def get_routes(self, viewset: type) -> list:
        if getattr(viewset, "singleton", False):
            return self.singleton_routes
        return super().get_routes(viewset)
