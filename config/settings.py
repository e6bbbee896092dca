"""Settings, read from the environment with safe defaults.

Variables: DATABASE_URL, REDIS_URL, SECRET_KEY, DEBUG, PRODUCTION, ALLOWED_HOSTS,
TENANT_BASE_DOMAIN, PUBLIC_HOSTS, CORS_ALLOWED_ORIGINS, CSRF_TRUSTED_ORIGINS, TRUSTED_PROXIES,
SECURE_SSL_REDIRECT, SECURE_COOKIES, HSTS_SECONDS, HSTS_INCLUDE_SUBDOMAINS, HSTS_PRELOAD,
LOGIN_RATE, LOG_LEVEL, MAX_REQUEST_BODY_BYTES, CONN_MAX_AGE, DATABASE_POOL_MODE, DATABASE_DIRECT_URL,
DATABASE_MAX_SCHEMAS_PER_CONNECTION, PORT (used by the Makefile).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# PRODUCTION=1 selects the hardened path: no debug, a real secret, HTTPS-only cookies, HSTS.
PRODUCTION = env_bool("PRODUCTION", False)
DEBUG = False if PRODUCTION else env_bool("DEBUG", False)

_DEV_SECRET = "dev-only-insecure-secret-key-change-me-in-production-0123456789"
SECRET_KEY = os.environ.get("SECRET_KEY") or _DEV_SECRET
if PRODUCTION and (SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured("PRODUCTION needs SECRET_KEY: a random string of 50 characters or more")

TENANT_BASE_DOMAIN = os.environ.get("TENANT_BASE_DOMAIN", "localhost").strip().lower()
# Hosts that serve the platform (public schema); X-Tenant-ID selects a tenant there.
PUBLIC_HOSTS = sorted({TENANT_BASE_DOMAIN, "localhost", "127.0.0.1", "[::1]"} | set(env_list("PUBLIC_HOSTS", "")))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", f"{TENANT_BASE_DOMAIN},.{TENANT_BASE_DOMAIN},127.0.0.1,[::1]")

# --- Applications -----------------------------------------------------------

SHARED_APPS = [
    "tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    # Before django_tenants, so the stock admin templates win over its tenant-aware ones:
    # our admin only ever runs on the public host.
    "django.contrib.admin",
    "django_tenants",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files, served by the project so that /api/docs/ works offline.
    "drf_spectacular_sidecar",
]
TENANT_APPS = [
    "django.contrib.sessions",
    "accounts",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
# Issue `SET search_path` only when the schema changes, not on every cursor.
TENANT_LIMIT_SET_CALLS = True

MIDDLEWARE = [
    "tenants.middleware.TrustedProxyMiddleware",
    "tenants.middleware.RequestLogMiddleware",
    # Early, so that a database outage anywhere below answers 503 rather than 500.
    "tenants.middleware.DatabaseUnavailableMiddleware",
    "tenants.middleware.BodySizeLimitMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "tenants.middleware.TenantResolutionMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls_tenant"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.workspace",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

# --- Database -----------------------------------------------------------------

DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
CONN_MAX_AGE = int(os.environ.get("CONN_MAX_AGE", "60"))
# No CONN_HEALTH_CHECKS (a SELECT 1 before every request): the backend retries the first
# statement of a request once on a new connection when a restart killed the old one (tenants/db).
if DATABASE_URL:
    _database = dj_database_url.parse(DATABASE_URL, conn_max_age=CONN_MAX_AGE, conn_health_checks=False)
else:
    from config.embedded_postgres import ensure_running

    _database = {**ensure_running(), "CONN_MAX_AGE": CONN_MAX_AGE, "CONN_HEALTH_CHECKS": False}
_database["ENGINE"] = "django_tenants.postgresql_backend"
_database.setdefault("OPTIONS", {})
_database["OPTIONS"].setdefault("connect_timeout", 2)
# "direct": DATABASE_URL is PostgreSQL itself (or a pooler in session mode). "transaction": it is
# a pooler in transaction mode (PgBouncer's pool_mode = transaction); no session state is relied
# on, see tenants/db/base.py.
_database["POOL_MODE"] = os.environ.get("DATABASE_POOL_MODE", "direct").strip().lower() or "direct"
# Close a connection at the end of the request in which it passed this many distinct tenant
# schemas (0: never), so that no PostgreSQL backend keeps the catalogue of every schema.
_database["MAX_SCHEMAS_PER_CONNECTION"] = int(os.environ.get("DATABASE_MAX_SCHEMAS_PER_CONNECTION", "300"))
DATABASES = {"default": _database}
# PostgreSQL itself, for what a transaction pooler cannot carry: the registry cache's LISTEN.
# Unset: DATABASE_URL in direct mode; in transaction mode the cache is off (every request
# reads the registry).
DATABASE_DIRECT_URL = os.environ.get("DATABASE_DIRECT_URL", "").strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    "accounts.backends.PlatformStaffBackend",
    "accounts.backends.TenantUserBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/django-admin/login/"

# --- API ----------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "api.errors.json_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "api.openapi.ProjectAutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Client addresses come from REMOTE_ADDR, which TrustedProxyMiddleware sets from trusted proxies only.
    "NUM_PROXIES": 0,
    "DEFAULT_THROTTLE_RATES": {"login": os.environ.get("LOGIN_RATE", "10/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tenant platform API",
    "DESCRIPTION": (
        "Platform routes (/admin/...) run on the public host for platform staff. Tenant routes (/api/...) "
        "run on <tenant>.<base domain>, or on the public host with the X-Tenant-ID header. "
        'Every route answers with and without a trailing slash; every error is JSON {"error": "..."}.'
    ),
    "VERSION": "1.0.0",
    "DEFAULT_GENERATOR_CLASS": "api.openapi.BothApisGenerator",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.openapi.strict_request_bodies",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
MAX_REQUEST_BODY_BYTES = int(os.environ.get("MAX_REQUEST_BODY_BYTES", str(256 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS", "")
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "x-csrftoken",
    "x-requested-with",
    "x-tenant-id",
]

REDIS_URL = os.environ.get("REDIS_URL", "").strip()
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

# --- Security -------------------------------------------------------------------

# X-Forwarded-For/-Proto/-Host are honoured only from these addresses or networks
# (comma-separated, e.g. "10.0.0.0/8,127.0.0.1"); from anyone else they are dropped.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = bool(TRUSTED_PROXIES)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", PRODUCTION)
SECURE_HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", str(31_536_000 if PRODUCTION else 0)))
# Tenants live on subdomains, so HSTS covers them too.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", PRODUCTION)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

# --- I18N, static -------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True

# --- Logging ------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"skip_database_unavailable": {"()": "api.errors.SkipDatabaseUnavailable"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        # An outage is logged once per request by the 503 path (saas.db), without a traceback.
        "django.request": {"filters": ["skip_database_unavailable"]},
        "saas.request": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO"), "propagate": False},
        "django.server": {"handlers": [], "propagate": False},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
}

# --- Fast tenancy (issue 5) ---------------------------------------------------
# django-tenants' backend, sending `SET search_path` only when a connection's path changes.
DATABASES["default"]["ENGINE"] = "tenants.db"
# Schemas migrated in advance, so that provisioning a tenant is a rename (tenants.provisioning).
TENANT_POOL_SIZE = int(os.environ.get("TENANT_POOL_SIZE", "20"))
# Refill the pool from a background thread after each provisioning (else: `manage.py tenant_pool`).
TENANT_POOL_REFILL = env_bool("TENANT_POOL_REFILL", False)
