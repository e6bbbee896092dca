"""What every page of a tenant host shows: the workspace's display name and theme colour."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.selectors import get_workspace_settings
from core.validation import is_hex_color

DEFAULT_THEME = "#2563eb"


def workspace(request: HttpRequest) -> dict:
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        return {}
    current = get_workspace_settings()
    # The API only stores #rrggbb, but the value lands inside CSS: never trust it blindly.
    theme = current.theme_color if is_hex_color(current.theme_color) else DEFAULT_THEME
    return {"workspace": {"display_name": current.display_name or tenant.name, "theme_color": theme}}
