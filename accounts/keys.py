"""Checking a tenant API key on a request: no database round trip on a warm worker.

Each worker process keeps the keys it has checked in memory, by schema and key id,
and drops a schema's keys when the ``api_keys`` notification of that schema arrives
(sent by ``announce_change`` in the transaction that revokes a key, received on the
registry cache's listener: ``tenants.cache``): a revoked key is refused by every worker
within milliseconds of the commit. Like the registry cache, this one answers only while
the listener is connected, and never keeps what it read inside a transaction.

The notification is sent by the service, not by a trigger on the keys table: the table
lives in each tenant's schema, which a Citus cluster places on a worker node, where a
trigger would be refused (and its NOTIFY would not reach the coordinator's listeners).

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
from tenants.cache import registry_cache
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


class _KeyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], ApiKeyPrincipal] = {}
        self._generation = 0
        self._last_written: dict[tuple[str, int], float] = {}

    def forget(self, schema: str | None) -> None:
        with self._lock:
            self._generation += 1
            if schema is None:
                self._keys.clear()
            else:
                for entry in [entry for entry in self._keys if entry[0] == schema]:
                    del self._keys[entry]

    def get(self, schema: str, key_id: str) -> ApiKeyPrincipal | None:
        return self._keys.get((schema, key_id))

    def generation(self) -> int:
        return self._generation

    def put(self, generation: int, schema: str, principal: ApiKeyPrincipal) -> None:
        with self._lock:
            if generation != self._generation:
                return  # a change arrived while the row was read
            if len(self._keys) >= MAX_ENTRIES:
                self._keys.clear()
            self._keys[(schema, principal.key_id)] = principal

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


key_cache = _KeyCache()


def follow_revocations() -> None:
    """Subscribe the key cache to the registry listener (AppConfig.ready, before any request).

    This process also forgets a schema's keys as soon as its own change of a key commits,
    not a notification later.
    """
    from django.db import transaction
    from django.db.models.signals import post_delete, post_save

    registry_cache.follow(CHANNEL, key_cache.forget)

    def changed(**kwargs: object) -> None:
        schema = connection.schema_name
        transaction.on_commit(lambda: key_cache.forget(schema))

    post_save.connect(changed, sender=ApiKey, weak=False, dispatch_uid="api-key-cache-save")
    post_delete.connect(changed, sender=ApiKey, weak=False, dispatch_uid="api-key-cache-delete")


def announce_change() -> None:
    """Tell every worker, at commit, to forget the current schema's keys (call inside the change's transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, connection.schema_name])


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
    schema = connection.schema_name
    usable = not connection.in_atomic_block and registry_cache.usable()
    if usable:
        cached = key_cache.get(schema, key_id)
        if cached is not None:
            return cached
    generation = key_cache.generation()
    principal = _load(key_id)
    # Unknown ids are not remembered: anyone can send any.
    if usable and principal is not None:
        key_cache.put(generation, schema, principal)
    return principal


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
    if key_cache.due_for_write(connection.schema_name, principal.pk, time.monotonic()):
        # Only last_used_at, which no cache holds: nothing to announce.
        ApiKey.objects.filter(pk=principal.pk).update(last_used_at=timezone.now())
