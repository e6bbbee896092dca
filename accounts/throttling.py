"""Throttling of the endpoints that take a password, against guessing."""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle


class LoginRateThrottle(SimpleRateThrottle):
    """LOGIN_RATE attempts per client address (default 10 a minute).

    Counted in the cache, whose keys carry the schema name: a tenant's sign-ins and the
    platform's are throttled apart. With REDIS_URL the count is shared by all workers.
    """

    scope = "login"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
