"""One sign-in throttle for every way to sign in, against password guessing and hashing floods.

The tenant's sign-in page, the browsable API's log-in, both token endpoints and the Django
admin's log-in all check a password through Django's ``authenticate()``, and so will any
credential endpoint added later. ``SignInThrottleBackend`` is the first authentication
backend: it counts the attempt and refuses it, before any other backend hashes a password,
when either of two counts is over LOGIN_RATE (default 10 a minute):

- the account's: one per user, that is per schema (a tenant's, or the platform's) and username;
- the client address's, across every tenant and the platform, so that one client cannot
  spend LOGIN_RATE password hashes per tenant.

Counts live in ``tenants.ratelimit`` (Redis when REDIS_URL is set, PostgreSQL otherwise):
every worker process sees the same ones. Every attempt counts, successful or not.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import connection
from django.http import HttpRequest

from core.errors import RateLimited
from tenants import ratelimit

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class SignInThrottled(RateLimited):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many sign-in attempts. Try again in {retry_after} seconds.", retry_after)


def login_rate() -> tuple[int, int]:
    """LOGIN_RATE as (attempts, window in seconds): "10/min", "5/s", "100/hour", "1000/day"."""
    attempts, _, period = settings.LOGIN_RATE.partition("/")
    return int(attempts), _SECONDS[period.strip()[:1].lower()]


def _account_key(username: str) -> str:
    # Hashed: any length, any character, one fixed-size key; the schema keeps tenants apart.
    digest = hashlib.sha256(f"{connection.schema_name}\0{username.strip().lower()}".encode()).hexdigest()
    return f"signin:account:{digest[:40]}"


def check_sign_in(request: HttpRequest | None, username: object) -> None:
    """Count one sign-in attempt; ``SignInThrottled`` (429) when the account or the address is over the rate."""
    limit, window = login_rate()
    keys = []
    if isinstance(username, str):
        keys.append(_account_key(username))
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    if address:
        keys.append(f"signin:address:{address[:100]}")
    decisions = [ratelimit.count(key, limit, window) for key in keys]
    refused = [decision for decision in decisions if not decision.allowed]
    if refused:
        raise SignInThrottled(max(decision.retry_after for decision in refused))


class SignInThrottleBackend:
    """Authenticates nobody: counts the attempt, and raises ``SignInThrottled`` over the rate.

    ``authenticate()`` would swallow ``PermissionDenied`` into "wrong password"; this exception
    goes through to the API's handler (429 JSON) or to ``core.middleware.RefusalMiddleware``
    (a 429 page with the message).
    """

    def authenticate(self, request: HttpRequest | None, username: object = None, **credentials: object) -> None:
        check_sign_in(request, username)
        return None

    def get_user(self, user_id: object) -> None:
        return None
