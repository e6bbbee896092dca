"""Applications, middleware, templates, URLs, static files, time and language."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# Apps whose tables live in the public schema (the registry, platform staff, sessions of the platform).
SHARED_APPS = [
    "tenants",
    # The job queue's tables and the jobs staff see live in the public schema only.
    "procrastinate.contrib.django",
    "core.jobs",
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
    "api",
]
# Apps whose tables live in every tenant's schema.
TENANT_APPS = [
    "django.contrib.sessions",
    "core",
    "accounts",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

MIDDLEWARE = [
    "core.middleware.TrustedProxyMiddleware",
    "core.middleware.RequestLogMiddleware",
    # Early, so that a database outage anywhere below answers 503 rather than 500.
    "core.outage.DatabaseUnavailableMiddleware",
    # Before anything reads the request: a bad Host, NUL bytes, too many parameters are a 400 here.
    "core.middleware.MalformedRequestMiddleware",
    "core.middleware.BodySizeLimitMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "tenants.middleware.TenantResolutionMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Once the user is known: the plan's requests per minute, pages included.
    "tenants.middleware.TenantRateLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A client's error raised by a page or the Django admin answers as a 4xx, not a 500.
    "core.middleware.RefusalMiddleware",
]

ROOT_URLCONF = "config.urls_tenant"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
APPEND_SLASH = False
WSGI_APPLICATION = "config.wsgi.application"

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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
