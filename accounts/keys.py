"""Checking a tenant API key on a request: no database round trip on a warm worker.

Each worker process keeps the keys it has checked in memory, by schema and key id
(``tenants.cache.SchemaRowCache``), and drops a schema's keys when the ``api_keys``
notification of that schema arrives, sent in the transaction of every save or delete of a
key: a revoked key is refused by every worker within milliseconds of the commit.

A key is found by its public key id and compared with its stored digest in constant
time. ``last_used_at`` is written at most once a minute per key and process.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from accounts.models import ApiKey
from core.models import digest
from tenants.cache import SchemaRowCache
from tenants.credentials import Credential

CHANNEL = "api_keys"
READ, WRITE = "read", "write"
SCOPES = (READ, WRITE)
# last_used_at is written at most this often per key and process.
LAST_USED_EVERY_SECONDS = 60.0
MAX_ENTRIES = 50_000


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """The ``request.user`` of a request made with an API key: the key, never a person.

    ``read`` allows safe methods; ``write`` also writes to users and settings. A key never
    manages keys and never reaches the platform API.
    """

    pk: int
    key_id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    expires_at: datetime | None
    key_digest: str

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    actor_kind = "key"  # core.audit.Actor: events name the key, never its secret

    def get_username(self) -> str:
        return self.prefix

    def allows(self, safe_method: bool) -> bool:
        return WRITE in self.scopes or (safe_method and READ in self.scopes)

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


class _LastUse:
    """When this process last wrote each key's ``last_used_at``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_written: dict[tuple[str, int], float] = {}

    def due_for_write(self, schema: str, pk: int, now: float) -> bool:
        """True at most once per LAST_USED_EVERY_SECONDS for a key, in this process."""
        entry = (schema, pk)
        with self._lock:
            if now - self._last_written.get(entry, float("-inf")) < LAST_USED_EVERY_SECONDS:
                return False
            if len(self._last_written) >= MAX_ENTRIES:
                self._last_written.clear()
            self._last_written[entry] = now
            return True


key_cache = SchemaRowCache(CHANNEL, MAX_ENTRIES)
_last_use = _LastUse()


def follow_revocations() -> None:
    """Subscribe the key cache to the registry listener (AppConfig.ready, before any request)."""
    key_cache.watch(ApiKey)


def _principal(row: ApiKey) -> ApiKeyPrincipal:
    return ApiKeyPrincipal(
        pk=row.pk,
        key_id=row.key_id,
        name=row.name,
        prefix=row.prefix,
        scopes=tuple(row.scopes),
        expires_at=row.expires_at,
        key_digest=row.key_digest,
    )


def _load(key_id: str) -> ApiKeyPrincipal | None:
    row = ApiKey.objects.filter(key_id=key_id).only("key_id", "name", "prefix", "scopes", "expires_at", "key_digest")
    found = row.first()
    return _principal(found) if found is not None else None


def find(key_id: str) -> ApiKeyPrincipal | None:
    """The key with this id in the current schema, from this process's cache when it may answer."""
    return key_cache.read_through(key_id, _load)


def authenticate(credential: Credential) -> ApiKeyPrincipal | None:
    """The valid, unexpired key a request presents in the current tenant's schema, or None."""
    if credential.kind != "key" or credential.key_id is None:
        return None
    principal = find(credential.key_id)
    # Digest of the whole key against the stored one, in constant time.
    if principal is None or not hmac.compare_digest(principal.key_digest, digest(credential.raw)):
        return None
    if principal.expired():
        return None
    note_use(principal)
    return principal


def note_use(principal: ApiKeyPrincipal) -> None:
    """Record that the key was used, with a write at most once a minute per key and process."""
    if _last_use.due_for_write(connection.schema_name, principal.pk, time.monotonic()):
        # Only last_used_at, which no cache holds: nothing to announce.
        ApiKey.objects.filter(pk=principal.pk).update(last_used_at=timezone.now())
