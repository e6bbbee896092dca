"""Per-tenant request rate limits, counted across all worker processes.

A fixed one-minute window per tenant. The counter lives in Redis when REDIS_URL
is set (one INCR), otherwise in PostgreSQL (one upsert). Keys always carry the
tenant id, so tenants never share a counter.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until the window resets


@functools.cache
def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def _hit_redis(tenant_id: str, window_start: int) -> int:
    key = f"ratelimit:{tenant_id}:{window_start}"
    pipeline = _redis().pipeline()
    pipeline.incr(key)
    pipeline.expire(key, WINDOW_SECONDS + 5)
    hits, _ = pipeline.execute()
    return int(hits)


def _hit_database(tenant_id: str, window_start: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO public.tenants_ratelimitcounter (tenant_id, window_start, hits) VALUES (%s, %s, 1)
            ON CONFLICT (tenant_id, window_start)
            DO UPDATE SET hits = public.tenants_ratelimitcounter.hits + 1
            RETURNING hits
            """,
            [tenant_id, window_start],
        )
        hits = cursor.fetchone()[0]
        if hits == 1:
            # First request of a new window: old windows of this tenant are of no use any more.
            cursor.execute(
                "DELETE FROM public.tenants_ratelimitcounter WHERE tenant_id = %s AND window_start < %s",
                [tenant_id, window_start],
            )
    return hits


def hit(tenant_id: str, limit_per_minute: int, now: float | None = None) -> Decision:
    """Count one request of ``tenant_id``; refuse it when over ``limit_per_minute`` (0: no limit)."""
    if limit_per_minute <= 0:
        return Decision(True, 0)
    now = time.time() if now is None else now
    window_start = int(now) - int(now) % WINDOW_SECONDS
    hits = _hit_redis(tenant_id, window_start) if settings.REDIS_URL else _hit_database(tenant_id, window_start)
    retry_after = max(1, window_start + WINDOW_SECONDS - int(now))
    return Decision(hits <= limit_per_minute, retry_after)
