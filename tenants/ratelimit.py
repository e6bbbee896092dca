"""Requests counted per key in fixed windows, across all worker processes.

Two rules count here: a tenant's plan rate limit (key: the tenant's id, a one-minute
window) and the sign-in throttle (keys ``signin:...``, see ``accounts.throttling``).
The counter lives in Redis when REDIS_URL is set (one INCR), otherwise in PostgreSQL
(one upsert): never in a worker's memory, so every worker sees the same count. Keys of
tenants are their ids, so tenants never share a counter.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.http import HttpRequest

WINDOW_SECONDS = 60
# Expired rows of the database store removed by each new window's first hit, at most.
PRUNE_BATCH = 200


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until the window resets


ALLOWED = Decision(True, 0)


def now() -> float:
    """The counting clock (Unix time); tests hold it still."""
    return time.time()


@functools.cache
def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def _hit_redis(key: str, window_start: int, window: int) -> int:
    redis_key = f"ratelimit:{key}:{window_start}"
    pipeline = _redis().pipeline()
    pipeline.incr(redis_key)
    pipeline.expire(redis_key, window + 5)
    hits, _ = pipeline.execute()
    return int(hits)


def _hit_database(key: str, window_start: int, window: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO public.tenants_ratelimitcounter (key, window_start, expires_at, hits) VALUES (%s, %s, %s, 1)
            ON CONFLICT (key, window_start)
            DO UPDATE SET hits = public.tenants_ratelimitcounter.hits + 1
            RETURNING hits
            """,
            [key, window_start, window_start + window],
        )
        hits = cursor.fetchone()[0]
        if hits == 1:
            # A new window began: rows of ended windows, of any key, are of no use any more. Rows
            # another request is removing are skipped rather than waited for.
            cursor.execute(
                """
                DELETE FROM public.tenants_ratelimitcounter WHERE id IN (
                    SELECT id FROM public.tenants_ratelimitcounter WHERE expires_at <= %s
                    LIMIT %s FOR UPDATE SKIP LOCKED
                )
                """,
                [window_start, PRUNE_BATCH],
            )
    return hits


def count(key: str, limit: int, window: int = WINDOW_SECONDS) -> Decision:
    """Count one request under ``key``; refuse it when the window holds more than ``limit`` (0: no limit)."""
    if limit <= 0:
        return ALLOWED
    moment = int(now())
    window_start = moment - moment % window
    store = _hit_redis if settings.REDIS_URL else _hit_database
    hits = store(key, window_start, window)
    retry_after = max(1, window_start + window - moment)
    return Decision(hits <= limit, retry_after)


def hit(tenant_id: str, limit_per_minute: int) -> Decision:
    """Count one request of ``tenant_id``; refuse it when over ``limit_per_minute`` (0: no limit)."""
    return count(tenant_id, limit_per_minute, WINDOW_SECONDS)


def count_tenant_request(request: HttpRequest) -> Decision:
    """Count ``request`` against its tenant's plan limit, once, whoever asks first.

    Pages are counted by ``tenants.middleware.TenantRateLimitMiddleware``, API requests
    signed in by token by the API's throttle; a session request to the API meets both,
    and counts once.
    """
    decision = getattr(request, "_tenant_rate_decision", None)
    if decision is None:
        tenant = request.tenant
        decision = hit(tenant.id, tenant.limits.rate_limit_per_minute)
        request._tenant_rate_decision = decision
        return decision
    # Already counted (and answered, if refused): let the request through here.
    return ALLOWED
