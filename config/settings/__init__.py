"""Settings, one module per topic, every value from the environment with a safe default.

Importing settings has no side effect: it starts nothing and connects to nothing. The
entry points (``manage.py``, ``config.wsgi``, the test session) start the embedded
PostgreSQL when no DATABASE_URL is set (``config.embedded_postgres``).

Variables: DATABASE_URL, CONN_MAX_AGE, DATABASE_POOL_MODE, DATABASE_DIRECT_URL,
DATABASE_MAX_SCHEMAS_PER_CONNECTION, REDIS_URL (database); SECRET_KEY, DEBUG, PRODUCTION,
ALLOWED_HOSTS, TRUSTED_PROXIES, SECURE_SSL_REDIRECT, SECURE_COOKIES, HSTS_SECONDS,
HSTS_INCLUDE_SUBDOMAINS, HSTS_PRELOAD, CORS_ALLOWED_ORIGINS, CSRF_TRUSTED_ORIGINS,
MAX_REQUEST_BODY_BYTES, LOGIN_RATE, JWT_PRIVATE_KEY, JWT_PRIVATE_KEY_FILE,
JWT_PREVIOUS_PUBLIC_KEY_FILES, JWT_ACCESS_SECONDS, JWT_REFRESH_SECONDS (security); TENANT_BASE_DOMAIN, PUBLIC_HOSTS,
TENANT_POOL_SIZE, TENANT_POOL_REFILL, TENANT_DELETE_GRACE_DAYS, QUOTA_BATCH, QUOTA_SYNC_MARGIN,
QUOTA_FLUSH_SECONDS (tenancy); JOB_STALLED_SECONDS, JOB_RETRIES, JOB_WORKER_CONCURRENCY, ARCHIVE_ROOT,
TENANT_ARCHIVE_MAX_BYTES, TENANT_ARCHIVE_MAX_UNPACKED_BYTES (jobs); LOG_LEVEL (logging); PORT (the Makefile).
"""

from config.settings.api import *  # noqa: F403
from config.settings.apps import *  # noqa: F403
from config.settings.database import *  # noqa: F403
from config.settings.jobs import *  # noqa: F403
from config.settings.logging import *  # noqa: F403
from config.settings.security import *  # noqa: F403
from config.settings.tenancy import *  # noqa: F403
