from django.urls import re_path


def route(pattern: str, view, name: str | None = None):
    """A URL that answers with and without a trailing slash, for every method.

    ``pattern`` is a regular expression without anchors or trailing slash,
    e.g. ``r"admin/tenants/(?P<tenant_id>[^/]+)"``.
    """
    return re_path(rf"^{pattern}/?$", view, name=name)
