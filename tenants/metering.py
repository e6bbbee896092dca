"""Monthly request quotas: each tenant's API requests counted per calendar month (UTC).

With REDIS_URL, one atomic script per request counts and refuses in Redis: exact across
any number of processes and servers, and as durable as the Redis server is.

Without it, counts go to PostgreSQL (``UsageCounter``) without a write per request:

* Far from the quota (more than ``QUOTA_SYNC_MARGIN`` requests left, or no quota at all),
  each process counts in memory and adds its count to the row in one upsert every
  ``QUOTA_BATCH`` requests, every second from a background thread, and at exit.
* Near the quota, every request is counted in the row at once by a conditional
  increment (``... WHERE requests < quota``): the database admits exactly up to the quota,
  whatever the number of processes. Once refused, a process remembers the tenant as spent
  for the month (and that quota), and refuses without a round trip.

What can slip past the quota: requests that other processes admitted while they still
counted in memory and had not added to the row yet. A process stays in memory mode only
while the row, as of its last upsert (at most a second old, or ``QUOTA_BATCH`` requests
ago), leaves ``QUOTA_SYNC_MARGIN`` requests; so nothing slips unless a tenant makes more
than ``QUOTA_SYNC_MARGIN`` requests within about a second, and then at most
(P - 1) x (QUOTA_BATCH - 1) requests slip, P being the number of worker processes. A
process killed without its exit (SIGKILL, a crash) loses its uncounted requests, fewer
than QUOTA_BATCH and at most a second's worth.
"""

from __future__ import annotations

import atexit
import calendar
import datetime
import functools
import logging
import os
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, connections

logger = logging.getLogger("saas.metering")

Key = tuple[str, str]  # tenant id, period "YYYY-MM"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until the next month starts (UTC)


ADMITTED = Decision(True, 0)


# The month of the latest call (start, end, "YYYY-MM"): formatted once a month, not once a request.
_month: tuple[float, float, str] = (0.0, 0.0, "")


def period_of(now: float) -> str:
    """The calendar month (UTC) of a moment, as "YYYY-MM"."""
    global _month
    start, end, period = _month
    if start <= now < end:
        return period
    day = time.gmtime(now)
    period = time.strftime("%Y-%m", day)
    _month = (float(calendar.timegm((day.tm_year, day.tm_mon, 1, 0, 0, 0))), next_month_start(now), period)
    return period


def next_month_start(now: float) -> float:
    day = datetime.datetime.fromtimestamp(now, datetime.UTC)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return float(calendar.timegm((year, month, 1, 0, 0, 0)))


# --- PostgreSQL ------------------------------------------------------------------------------

# Every pending count of a process in one statement: the flusher's round trips do not grow with
# the number of tenants a worker served (ten thousand tenants, one round trip a second).
_ADD_MANY = """
INSERT INTO public.tenants_usagecounter (tenant_id, period, requests)
SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::bigint[])
ON CONFLICT (tenant_id, period) DO UPDATE SET requests = public.tenants_usagecounter.requests + EXCLUDED.requests
RETURNING tenant_id, period, requests
"""
# Keys per statement of flush_all, so that one statement stays a reasonable size.
_FLUSH_BATCH = 5000
_ADD_ONE_BELOW = """
INSERT INTO public.tenants_usagecounter (tenant_id, period, requests) VALUES (%s, %s, 1)
ON CONFLICT (tenant_id, period) DO UPDATE SET requests = public.tenants_usagecounter.requests + 1
WHERE public.tenants_usagecounter.requests < %s
RETURNING requests
"""


class _Meter:
    """This process's counts not yet in the database, and what it knows of the rows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[Key, int] = {}
        self._known: dict[Key, int] = {}
        self._spent: dict[Key, int] = {}  # tenant and month refused at this quota
        self._pid = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # The test session turns the thread off and flushes when it chooses.
        self.background = True

    # -- the request path ---------------------------------------------------------------------

    def hit(self, tenant_id: str, quota: int | None, period: str) -> bool:
        key = (tenant_id, period)
        self._ensure_started()
        with self._lock:
            if quota is not None and self._spent.get(key) == quota:
                return False
            known = self._known.get(key)
            pending = self._pending.get(key, 0)
            in_memory = quota is None or (
                known is not None and known + pending + 1 <= quota - settings.QUOTA_SYNC_MARGIN
            )
            if in_memory:
                self._pending[key] = pending + 1
                due = pending + 1 >= settings.QUOTA_BATCH
        if in_memory:
            if due:
                self._flush(key)
            return True
        if quota <= 0:
            return False
        return self._count_at_once(key, quota)

    def _count_at_once(self, key: Key, quota: int) -> bool:
        """Near the quota: this process's earlier count, then this request, added in the row itself."""
        self._flush(key)
        with connection.cursor() as cursor:
            cursor.execute(_ADD_ONE_BELOW, [*key, quota])
            row = cursor.fetchone()
        with self._lock:
            if row is None:
                self._known[key] = max(self._known.get(key, 0), quota)
                self._spent[key] = quota
                return False
            self._known[key] = row[0]
            self._spent.pop(key, None)
            return True

    # -- flushing ----------------------------------------------------------------------------

    def _take(self, key: Key) -> int:
        with self._lock:
            return self._pending.pop(key, 0)

    def _flush(self, key: Key) -> None:
        count = self._take(key)
        if count:
            self._add({key: count})

    def _add(self, counts: dict[Key, int]) -> None:
        """Add taken counts to their rows in one statement; on failure they are given back for the next flush."""
        keys = sorted(counts)  # two processes flushing the same tenants lock their rows in the same order
        try:
            with connection.cursor() as cursor:
                columns = [[key[0] for key in keys], [key[1] for key in keys], [counts[key] for key in keys]]
                cursor.execute(_ADD_MANY, columns)
                totals = cursor.fetchall()
        except Exception:
            for key in keys:
                self._give_back(key, counts[key])
            raise
        with self._lock:
            for tenant_id, period, total in totals:
                self._known[(tenant_id, period)] = total

    def _give_back(self, key: Key, count: int) -> None:
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + count

    def flush_all(self) -> None:
        """Add every count of this process to the database (the thread, the exit, tests), a batch a statement.

        A batch that fails is given back with the ones after it, to be added by the next flush.
        """
        with self._lock:
            taken, self._pending = self._pending, {}
        keys = sorted(taken)
        for start in range(0, len(keys), _FLUSH_BATCH):
            try:
                self._add({key: taken[key] for key in keys[start : start + _FLUSH_BATCH]})
            except Exception:
                for key in keys[start + _FLUSH_BATCH :]:
                    self._give_back(key, taken[key])
                raise

    def pending(self, key: Key) -> int:
        return self._pending.get(key, 0)

    def _ensure_started(self) -> None:
        pid = os.getpid()
        if self._pid == pid:
            return
        with self._lock:
            if self._pid == pid:
                return
            # A forked child starts with nothing of its parent's counts (they are the parent's to add).
            self._pending.clear()
            self._known.clear()
            self._spent.clear()
            self._pid = pid
            self._stopping = threading.Event()
            atexit.register(self._at_exit)
            if self.background:
                self._thread = threading.Thread(target=self._run, name="usage-flusher", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(settings.QUOTA_FLUSH_SECONDS):
            try:
                self.flush_all()
            except Exception:
                logger.warning("could not add request counts to the database; keeping them", exc_info=True)
                connections.close_all()  # this thread's connection, which may be broken
        connections.close_all()

    def _at_exit(self) -> None:
        if self._pid != os.getpid():
            return
        try:
            self.flush_all()
        except Exception:
            logger.warning("request counts lost at exit", exc_info=True)

    def stop(self) -> None:
        """Stop the thread and the exit's flush, dropping counts not added yet (the test session,
        before its database is dropped: afterwards the connection would reach another database)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        self._thread = None
        self.reset()
        self._pid = -1  # not this process's meter any more: the exit adds nothing

    def reset(self) -> None:
        """Forget everything this process counted and knows (tests)."""
        with self._lock:
            self._pending.clear()
            self._known.clear()
            self._spent.clear()


meter = _Meter()


# --- Redis -------------------------------------------------------------------------------------

# Counts this request unless it would pass the quota (ARGV[1], "" for none); -1 means refused.
_REDIS_SCRIPT = """
local quota = ARGV[1]
if quota ~= '' and tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(quota) then
    return -1
end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return n
"""
# Counters outlive their month by a few weeks, for the usage of the month before.
REDIS_TTL_SECONDS = 70 * 86400


@functools.cache
def _redis():
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    return client, client.register_script(_REDIS_SCRIPT)


def redis_key(tenant_id: str, period: str) -> str:
    return f"usage:{tenant_id}:{period}"


# --- The one entry point, and reads -----------------------------------------------------------------


def hit(tenant_id: str, quota: int | None, now: float | None = None) -> Decision:
    """Count one API request of ``tenant_id`` this month; refuse it past ``quota`` (None: unlimited)."""
    now = time.time() if now is None else now
    period = period_of(now)
    if settings.REDIS_URL:
        _, script = _redis()
        allowed = script(keys=[redis_key(tenant_id, period)], args=["" if quota is None else quota, REDIS_TTL_SECONDS])
        allowed = int(allowed) >= 0
    else:
        allowed = meter.hit(tenant_id, quota, period)
    if allowed:
        return ADMITTED
    return Decision(False, max(1, int(next_month_start(now) - now + 0.999)))


def requests_in(tenant_ids: list[str], period: str) -> dict[str, int]:
    """Requests of each tenant in ``period``, as counted so far (this process's uncounted ones included)."""
    if not tenant_ids:
        return {}
    if settings.REDIS_URL:
        client, _ = _redis()
        values = client.mget([redis_key(tenant_id, period) for tenant_id in tenant_ids])
        return {tenant_id: int(value or 0) for tenant_id, value in zip(tenant_ids, values, strict=True)}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tenant_id, requests FROM public.tenants_usagecounter WHERE period = %s AND tenant_id = ANY(%s)",
            [period, list(tenant_ids)],
        )
        stored = dict(cursor.fetchall())
    return {tenant_id: stored.get(tenant_id, 0) + meter.pending((tenant_id, period)) for tenant_id in tenant_ids}
