"""The request's host name, checked against ALLOWED_HOSTS once per distinct Host header and worker."""

from __future__ import annotations

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest

# Host names by the headers they come from: ``get_host`` validates against ALLOWED_HOSTS and
# parses again on every call, while a worker sees the same few hosts (its tenants') over and over.
_host_names: dict[tuple[str | None, str], str] = {}
HOST_NAMES_MAX = 50_000  # bounded: anyone can send any Host


def host_name(request: HttpRequest) -> str:
    """The request's host without port, lower-cased; DisallowedHost unless ALLOWED_HOSTS allows it."""
    meta = request.META
    raw = meta.get("HTTP_HOST")
    if raw is None:  # no Host header: get_host falls back on the server's own name
        return _parse_host(request)
    key = (meta.get("HTTP_X_FORWARDED_HOST"), raw)
    name = _host_names.get(key)
    if name is None:
        name = _parse_host(request)  # raises DisallowedHost for a host that is not allowed: not kept
        if len(_host_names) >= HOST_NAMES_MAX:
            _host_names.clear()
        _host_names[key] = name
    return name


def _parse_host(request: HttpRequest) -> str:
    host = request.get_host().lower()
    if host.startswith("["):
        return host[: host.index("]") + 1]
    return host.rsplit(":", 1)[0]


@receiver(setting_changed)
def _forget_host_names(*, setting: str, **kwargs: object) -> None:
    """A host allowed under the old settings may not be under the new ones (tests change them)."""
    if setting in ("ALLOWED_HOSTS", "USE_X_FORWARDED_HOST", "DEBUG"):
        _host_names.clear()
