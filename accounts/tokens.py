"""Checking a tenant user's API token or JWT on a request: no database round trip on a warm worker.

Each worker process keeps the tokens it has checked in memory, by schema and digest, with
their user, and the users that JWTs name, by id (``tenants.cache.SchemaRowCache``). Every
save or delete of a token or of a user in a schema is announced on the ``auth_tokens``
channel in its own transaction, and every process drops that schema's entries when the
notification arrives: a token deleted by a sign-out, or a user deactivated or given another
role, is seen by every worker within milliseconds of the commit, as on the database.

What is kept is the rows' values, not model instances, and not the password hash or last
sign-in time: each request gets model instances of its own (a view that changes its user
changes nobody else's), and reading the password of such a user loads it from the database.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

from accounts.models import AuthToken, TenantUser
from core.models import digest
from tenants.cache import SchemaRowCache

CHANNEL = "auth_tokens"
# A worker that has checked more tokens and users than this starts again from none (about 1 kB each).
MAX_ENTRIES = 20_000

# The digest is the cache's key, not kept twice; the password hash and the last sign-in are
# never kept: a request that reads them loads them from the database.
_TOKEN_FIELDS = tuple(field.attname for field in AuthToken._meta.concrete_fields if field.attname != "key_digest")
_USER_FIELDS = tuple(
    field.attname for field in TenantUser._meta.concrete_fields if field.attname not in {"password", "last_login"}
)

token_cache = SchemaRowCache(CHANNEL, MAX_ENTRIES)
# Users named by id (by a JWT) share the cache, under keys no digest can take.
_USER_KEY = "user:"


def follow_changes() -> None:
    """Subscribe the token cache to the registry listener (AppConfig.ready, before any request)."""
    token_cache.watch(AuthToken, TenantUser)


def _load(key_digest: str) -> tuple[tuple, tuple] | None:
    token = AuthToken.objects.select_related("user").filter(key_digest=key_digest).first()
    if token is None:
        return None
    return tuple(getattr(token, name) for name in _TOKEN_FIELDS), _user_values(token.user)


def _user_values(user: TenantUser) -> tuple:
    return tuple(getattr(user, name) for name in _USER_FIELDS)


def _user_of(values: tuple) -> TenantUser:
    return TenantUser.from_db(DEFAULT_DB_ALIAS, _USER_FIELDS, values)


def user(pk: int) -> TenantUser | None:
    """The user ``pk`` of the current schema, active or not (a JWT names its user by id), or None."""

    def load(_: str) -> tuple | None:
        found = TenantUser.objects.filter(pk=pk).first()
        return None if found is None else _user_values(found)

    values = token_cache.read_through(f"{_USER_KEY}{pk}", load)
    return None if values is None else _user_of(values)


def find(raw_key: str) -> AuthToken | None:
    """The token of ``raw_key`` in the current schema, with its user (``token.user``), or None."""
    key_digest = digest(raw_key)
    row = token_cache.read_through(key_digest, _load)
    if row is None:
        return None
    token_values, user_values = row
    token = AuthToken.from_db(DEFAULT_DB_ALIAS, _TOKEN_FIELDS, token_values)
    token.key_digest = key_digest
    token.user = _user_of(user_values)
    return token
