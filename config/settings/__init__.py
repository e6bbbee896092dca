"""Settings, one module per topic, every value from the environment with a safe default.

Importing settings has no side effect: it starts nothing and connects to nothing. The
entry points (``manage.py``, ``config.wsgi``, the test session) start the embedded
PostgreSQL when no DATABASE_URL is set (``config.embedded_postgres``).

Variables: DATABASE_URL, CONN_MAX_AGE, REDIS_URL (database); SECRET_KEY, DEBUG, PRODUCTION,
ALLOWED_HOSTS, TRUSTED_PROXIES, SECURE_SSL_REDIRECT, SECURE_COOKIES, HSTS_SECONDS,
HSTS_INCLUDE_SUBDOMAINS, HSTS_PRELOAD, CORS_ALLOWED_ORIGINS, CSRF_TRUSTED_ORIGINS,
MAX_REQUEST_BODY_BYTES, LOGIN_RATE (security); TENANT_BASE_DOMAIN, PUBLIC_HOSTS,
TENANT_POOL_SIZE, TENANT_POOL_REFILL (tenancy); LOG_LEVEL (logging); PORT (the Makefile).
"""

from config.settings.api import *  # noqa: F403
from config.settings.apps import *  # noqa: F403
from config.settings.database import *  # noqa: F403
from config.settings.logging import *  # noqa: F403
from config.settings.security import *  # noqa: F403
from config.settings.tenancy import *  # noqa: F403
