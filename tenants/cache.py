"""A per-process cache of the tenant registry, kept fresh by PostgreSQL ``LISTEN/NOTIFY``.

Resolving a tenant on every request cost a round trip to the registry. Here each worker
process keeps the tenants and host names it has seen in memory, and one daemon thread per
process listens on the channel that triggers on ``tenants_tenant``, ``tenants_domain`` and
``tenants_plan`` notify (migration 0004). PostgreSQL delivers a notification when the
writing transaction commits, whichever process or tool wrote it (the API, the admin, a
``psql`` session), so suspension, reactivation and plan changes reach every worker within
milliseconds.

Correctness never rests on the thread being alive: the cache only answers while the
listener holds a live ``LISTEN``; otherwise every lookup goes to the database, as before.
Nothing read inside a transaction is cached either, since it may never be committed.

``LISTEN`` is session state, which a pooler in transaction mode does not keep: the
listener connects to ``DATABASE_DIRECT_URL`` when it is set, else to the app's own
server in direct mode only; in transaction mode without it there is no listener, so the
cache never answers and every request reads the registry.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.db.models import Model
from django.db.models.base import ModelState

logger = logging.getLogger("saas.tenant_cache")

CHANNEL = "tenant_registry"
# Upper bound on cached entries, so that a flood of host names cannot grow a worker without end.
MAX_ENTRIES = 50_000


class _Listener(threading.Thread):
    """Holds ``LISTEN tenant_registry`` on its own connection and clears the cache on each notification."""

    def __init__(self, cache: RegistryCache, params: dict[str, Any]) -> None:
        super().__init__(name="tenant-registry-listener", daemon=True)
        self.cache = cache
        self.params = params
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        while not self.stopping.is_set():
            try:
                with psycopg.connect(**self.params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    for channel in self.cache.followed_channels():
                        conn.execute(f"LISTEN {channel}")
                    # Anything cached before this LISTEN may have missed a notification.
                    self.cache.invalidate(healthy=True)
                    while not self.stopping.is_set():
                        for notification in conn.notifies(timeout=1.0):
                            self.cache.notified(notification.channel, notification.payload)
                        # Once a second: prove the connection still works (or fail and reconnect),
                        # and see the stop flag.
                        conn.execute("SELECT 1")
            except Exception:  # any failure means: stop trusting the cache, retry
                if not self.stopping.is_set():
                    logger.warning("tenant registry listener lost its connection; retrying", exc_info=True)
            finally:
                self.cache.invalidate(healthy=False)
            self.stopping.wait(0.5)

    def stop(self) -> None:
        # The thread sees the flag within a second, when its wait for notifications times out.
        self.stopping.set()


def listener_params() -> dict[str, Any] | None:
    """Where the listener connects (see the module's docstring); None: nowhere, the cache stays off."""
    from django.conf import settings

    if settings.DATABASE_DIRECT_URL:
        import dj_database_url

        parsed = dj_database_url.parse(settings.DATABASE_DIRECT_URL)
        params = {
            "dbname": parsed["NAME"],
            "user": parsed["USER"],
            "password": parsed["PASSWORD"],
            "host": parsed["HOST"],
            "port": parsed["PORT"],
            "connect_timeout": connection.settings_dict["OPTIONS"].get("connect_timeout", 2),
        }
        return {key: value for key, value in params.items() if value}
    from tenants.db.base import DIRECT, TRANSACTION

    if getattr(connection, "pool_mode", DIRECT) == TRANSACTION:
        return None
    return connection.get_connection_params()


class RegistryCache:
    """Tenants by id and tenant ids by host name, for one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, object] = {}
        self._hosts: dict[str, str] = {}
        self._plans: dict[object, object] = {}
        self._generation = 0
        self._healthy = False
        self._listener: _Listener | None = None
        self._pid = 0
        self._followers: dict[str, Callable[[str | None], None]] = {}

    # -- lifecycle -----------------------------------------------------------

    def _ensure_listener(self) -> bool:
        """Start this process's listener if needed (after a fork too); True when the cache may answer."""
        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    # A forked child inherits the parent's dicts but not its thread.
                    self._tenants.clear()
                    self._hosts.clear()
                    self._plans.clear()
                    self._healthy = False
                    self._generation += 1
                    params = listener_params()
                    self._listener = None if params is None else _Listener(self, params)
                    self._pid = pid
                    if self._listener is not None:
                        self._listener.start()
        return self._healthy

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the listener (tests, before their database is dropped)."""
        listener = self._listener
        if listener is not None and self._pid == os.getpid():
            listener.stop()
            listener.join(timeout)
        self._listener = None
        self._pid = 0
        self.invalidate(healthy=False)

    def wait_until_ready(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        self._ensure_listener()
        while not self._healthy and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._healthy

    def invalidate(self, healthy: bool | None = None) -> None:
        with self._lock:
            self._generation += 1
            self._tenants.clear()
            self._hosts.clear()
            self._plans.clear()
            if healthy is not None:
                self._healthy = healthy
        if healthy is not None:
            # The listener connected or lost its connection: other caches may have missed notifications too.
            for forget in self._followers.values():
                forget(None)

    # -- other per-process caches on the same listener ---------------------------------------

    def follow(self, channel: str, on_notify: Callable[[str | None], None]) -> None:
        """Also LISTEN on ``channel`` (call at start-up, before the first request starts the listener).

        ``on_notify(payload)`` runs on each notification of the channel, and ``on_notify(None)``
        whenever the listener connects or loses its connection. Such a cache may answer while
        ``usable()`` is true, as this one does.
        """
        self._followers[channel] = on_notify

    def followed_channels(self) -> list[str]:
        return list(self._followers)

    def notified(self, channel: str, payload: str) -> None:
        follower = self._followers.get(channel)
        if follower is None:
            self.invalidate(healthy=True)
        else:
            follower(payload)

    # -- reads ---------------------------------------------------------------

    def usable(self) -> bool:
        # Inside a transaction a read may see uncommitted rows that a rollback would take back.
        return not connection.in_atomic_block and self._ensure_listener()

    def generation(self) -> int:
        return self._generation

    def get_tenant(self, tenant_id: str) -> object | None:
        return self._tenants.get(tenant_id)

    def get_host(self, host: str) -> str | None:
        return self._hosts.get(host)

    def put(self, generation: int, tenant_id: str, row: object, host: str | None = None) -> None:
        """Store a row read while ``generation`` was current; dropped if a change came in since."""
        with self._lock:
            if generation != self._generation or not self._healthy:
                return
            if len(self._tenants) + len(self._hosts) >= MAX_ENTRIES:
                self._tenants.clear()
                self._hosts.clear()
                self._plans.clear()
            # The tenants of one plan share one copy of it (a third of an entry's memory): every
            # change of a plan clears the cache, so the copies kept are those of this generation.
            plan = row._state.fields_cache.get("plan")
            if plan is not None:
                row._state.fields_cache["plan"] = self._plans.setdefault(plan.pk, plan)
            self._tenants[tenant_id] = row
            if host is not None:
                self._hosts[host] = tenant_id


registry_cache = RegistryCache()


# -- read-through lookups (used by tenants.selectors, the one door to the registry) ------------


def _copy(row: Model) -> Model:
    """A copy per caller: a view that changes its tenant object changes nobody else's.

    What ``copy.copy`` of a model instance makes (its fields, its state, its own dict of
    related objects, which themselves are shared), without the pickling protocol that
    ``copy.copy`` goes through (``Model.__reduce__``, a model lookup, ``__setstate__``):
    a fifth of the cost, on every request.
    """
    clone = object.__new__(type(row))
    clone.__dict__.update(row.__dict__)
    state = clone._state = ModelState()
    state.__dict__.update(row._state.__dict__)
    state.fields_cache = row._state.fields_cache.copy()
    return clone


def read_through(load: Callable[[str], Any], *, tenant_id: str | None = None, host: str | None = None) -> Any:
    """The tenant that ``load`` finds by ``tenant_id`` (or by ``host``), from this process's cache when it may answer.

    ``load`` must read the tenant with its plan (``select_related``), so copies never query.
    """
    key = host if host is not None else tenant_id
    if not registry_cache.usable():
        return load(key)
    known_id = tenant_id if host is None else registry_cache.get_host(host)
    row = registry_cache.get_tenant(known_id) if known_id is not None else None
    if row is not None:
        return _copy(row)
    generation = registry_cache.generation()
    tenant = load(key)
    # Unknown ids and hosts are not remembered: anyone can send any.
    if tenant is not None:
        registry_cache.put(generation, tenant.id, _copy(tenant), host=host)
    return tenant


def connect_signals() -> None:
    """Forget this process's entries as soon as its own change commits, not a notification later."""
    from django.db import transaction
    from django.db.models.signals import post_delete, post_save

    from tenants.models import Domain, Plan, Tenant

    def changed(**kwargs: object) -> None:
        transaction.on_commit(registry_cache.invalidate)

    for model in (Tenant, Domain, Plan):
        post_save.connect(changed, sender=model, weak=False, dispatch_uid=f"tenant-cache-{model.__name__}-save")
        post_delete.connect(changed, sender=model, weak=False, dispatch_uid=f"tenant-cache-{model.__name__}-delete")


# -- caches of rows inside tenant schemas (API keys, user tokens) -------------------------------


class SchemaRowCache:
    """Rows read from tenant schemas, by (schema, key), for one process, on the registry's listener.

    A change of a cached table in a schema is announced on ``channel`` with the schema's name
    (``watch``): every process drops that schema's entries when the notification arrives, and
    the writing process as soon as its transaction commits. Everything is dropped whenever the
    listener connects or loses its connection, and on every change of the registry (a tenant
    deleted, purged or made anew under the same name). Like the registry cache, this one
    answers only while the listener is connected, and never keeps what it read inside a
    transaction. Unknown keys are not remembered: anyone can send any.
    """

    def __init__(self, channel: str, max_entries: int) -> None:
        self.channel = channel
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], Any] = {}
        self._generation = 0

    def forget(self, schema: str | None) -> None:
        with self._lock:
            self._generation += 1
            if schema is None:
                self._rows.clear()
            else:
                for entry in [entry for entry in self._rows if entry[0] == schema]:
                    del self._rows[entry]

    def __len__(self) -> int:
        return len(self._rows)

    def read_through(self, key: str, load: Callable[[str], Any]) -> Any:
        """The row of ``key`` in the current schema: from memory when the cache may answer, else ``load(key)``."""
        schema = connection.schema_name
        usable = registry_cache.usable()
        if usable:
            cached = self._rows.get((schema, key))
            if cached is not None:
                return cached
        generation = self._generation
        row = load(key)
        if usable and row is not None:
            with self._lock:
                if generation == self._generation:  # else a change arrived while the row was read
                    if len(self._rows) >= self.max_entries:
                        self._rows.clear()
                    self._rows[(schema, key)] = row
        return row

    def announce_change(self) -> None:
        """Tell every process, at commit, to forget the current schema's rows (inside the change's transaction)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [self.channel, connection.schema_name])

    def watch(self, *models: type) -> None:
        """Follow ``channel`` and announce every save and delete of ``models`` (AppConfig.ready).

        Signals, not triggers: the tables live in each tenant's schema, which a Citus cluster
        places on a worker node, where a trigger would be refused (and its NOTIFY would not
        reach the coordinator's listeners). Every ORM write sends them, whoever makes it;
        ``QuerySet.update`` does not, so it must not be used on the columns a cache holds.
        """
        from django.db import transaction
        from django.db.models.signals import post_delete, post_save

        registry_cache.follow(self.channel, self.forget)

        def changed(**kwargs: object) -> None:
            schema = connection.schema_name
            self.announce_change()
            transaction.on_commit(lambda: self.forget(schema))

        for model in models:
            uid = f"{self.channel}-{model.__name__}"
            post_save.connect(changed, sender=model, weak=False, dispatch_uid=f"{uid}-save")
            post_delete.connect(changed, sender=model, weak=False, dispatch_uid=f"{uid}-delete")
