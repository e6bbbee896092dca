"""PostgreSQL (DATABASE_URL, always set by then: see config.embedded_postgres) and the cache."""

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_int, env_str

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. Start the project through manage.py, config.wsgi or the test suite, "
        "which use the embedded PostgreSQL when it is unset, or set DATABASE_URL."
    )
CONN_MAX_AGE = env_int("CONN_MAX_AGE", 60)

DATABASES = {
    "default": {
        # No CONN_HEALTH_CHECKS (a SELECT 1 before every request): the backend retries the first
        # read of a request once on a new connection when a restart killed the old one (tenants.db).
        **dj_database_url.parse(DATABASE_URL, conn_max_age=CONN_MAX_AGE, conn_health_checks=False),
        # django-tenants' backend, sending `SET search_path` only when a connection's path changes (tenants.db).
        "ENGINE": "tenants.db",
        # "direct": DATABASE_URL is PostgreSQL itself (or a pooler in session mode). "transaction": it
        # is a pooler in transaction mode (PgBouncer's pool_mode = transaction); no session state is
        # relied on (tenants.db).
        "POOL_MODE": env_str("DATABASE_POOL_MODE", "direct").lower(),
        # Close a connection at the end of the request in which it passed this many distinct tenant
        # schemas (0: never), so that no PostgreSQL backend keeps the catalogue of every schema.
        "MAX_SCHEMAS_PER_CONNECTION": env_int("DATABASE_MAX_SCHEMAS_PER_CONNECTION", 100),
    }
}
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)
# PostgreSQL itself, for what a transaction pooler cannot carry: the registry cache's LISTEN.
# Unset: DATABASE_URL in direct mode; in transaction mode the cache is off (every request
# reads the registry).
DATABASE_DIRECT_URL = env_str("DATABASE_DIRECT_URL")
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]

REDIS_URL = env_str("REDIS_URL")
# Cache keys carry the schema name (django-tenants' key function), so tenants never share an entry.
CACHES = {
    "default": {
        "BACKEND": (
            "django.core.cache.backends.redis.RedisCache"
            if REDIS_URL
            else "django.core.cache.backends.locmem.LocMemCache"
        ),
        "LOCATION": REDIS_URL or "default",
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
    }
}
