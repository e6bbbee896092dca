"""Secrets, authentication, and what a browser or a proxy is trusted with."""

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str
from config.settings.apps import BASE_DIR

# PRODUCTION=1 selects the hardened path: no debug, a real secret, HTTPS-only cookies, HSTS.
PRODUCTION = env_bool("PRODUCTION", False)
DEBUG = False if PRODUCTION else env_bool("DEBUG", False)

_DEV_SECRET = "dev-only-insecure-secret-key-change-me-in-production-0123456789"
SECRET_KEY = env_str("SECRET_KEY") or _DEV_SECRET
if PRODUCTION and (SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured("PRODUCTION needs SECRET_KEY: a random string of 50 characters or more")

AUTHENTICATION_BACKENDS = [
    # First: counts every sign-in attempt, whatever the way, and refuses it before a password is hashed.
    "accounts.throttling.SignInThrottleBackend",
    "accounts.backends.PlatformStaffBackend",
    "accounts.backends.TenantUserBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/django-admin/login/"
# Sign-in attempts per account and, apart, per client address, by every way to sign in (accounts.throttling).
LOGIN_RATE = env_str("LOGIN_RATE", "10/min")

# Service tokens (core.signed_tokens): an Ed25519 private key as PEM text, or a file holding one
# (created on first use outside PRODUCTION); retired keys' public halves, still accepted and published.
JWT_PRIVATE_KEY = env_str("JWT_PRIVATE_KEY")
JWT_PRIVATE_KEY_FILE = env_str("JWT_PRIVATE_KEY_FILE") or str(BASE_DIR / ".secrets" / "jwt-signing-key.pem")
JWT_PREVIOUS_PUBLIC_KEY_FILES = env_list("JWT_PREVIOUS_PUBLIC_KEY_FILES")
JWT_ACCESS_SECONDS = env_int("JWT_ACCESS_SECONDS", 300)
JWT_REFRESH_SECONDS = env_int("JWT_REFRESH_SECONDS", 7 * 86400)

MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_BYTES", 256 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_HEADERS = [
    "accept",
    "authorization",
    "content-type",
    "x-api-key",
    "x-csrftoken",
    "x-requested-with",
    "x-tenant-id",
]
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# X-Forwarded-For/-Proto/-Host are honoured only from these addresses or networks
# (comma-separated, e.g. "10.0.0.0/8,127.0.0.1"); from anyone else they are dropped.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES")
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
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
# Tenants live on subdomains, so HSTS covers them too.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", PRODUCTION)
