"""What every page of a tenant host shows: the workspace's display name and theme colour."""

from __future__ import annotations

import re

from django.http import HttpRequest

DEFAULT_THEME = "#2563eb"
# The API only stores #rrggbb, but the value lands inside CSS: never trust it blindly.
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{6}\Z")


def workspace(request: HttpRequest) -> dict:
    tenant = getattr(request, "tenant", None)
    if tenant is None:
        return {}
    from accounts.selectors import get_workspace_settings

    current = get_workspace_settings()
    theme = current.theme_color if _HEX_COLOR.match(current.theme_color or "") else DEFAULT_THEME
    return {"workspace": {"display_name": current.display_name or tenant.name, "theme_color": theme}}
