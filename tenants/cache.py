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
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection

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
                    # Anything cached before this LISTEN may have missed a notification.
                    self.cache.invalidate(healthy=True)
                    while not self.stopping.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.cache.invalidate(healthy=True)
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


class RegistryCache:
    """Tenants by id and tenant ids by host name, for one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, object] = {}
        self._hosts: dict[str, str] = {}
        self._generation = 0
        self._healthy = False
        self._listener: _Listener | None = None
        self._pid = 0

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
                    self._healthy = False
                    self._generation += 1
                    self._listener = _Listener(self, connection.get_connection_params())
                    self._pid = pid
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
            if healthy is not None:
                self._healthy = healthy

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
            self._tenants[tenant_id] = row
            if host is not None:
                self._hosts[host] = tenant_id


registry_cache = RegistryCache()


# -- read-through lookups (used by tenants.selectors, the one door to the registry) ------------


def _copy(row: object) -> object:
    """A copy per caller: a view that changes its tenant object changes nobody else's.

    ``copy.copy`` of a model instance copies its state and its cache of related objects
    (Model.__getstate__), at about half the cost of building it again with ``from_db``.
    """
    return copy.copy(row)


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
        registry_cache.put(generation, tenant.id, tenant, host=host)
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
