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
        **dj_database_url.parse(DATABASE_URL, conn_max_age=CONN_MAX_AGE, conn_health_checks=True),
        # django-tenants' backend, sending `SET search_path` only when a connection's path changes (tenants.db).
        "ENGINE": "tenants.db",
    }
}
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)
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
