"""Benchmark: django-tenants' stock resolution (TenantMainMiddleware, stock backend) instead of ours."""

from config.settings import *  # noqa: F403
from config.settings import DATABASES, MIDDLEWARE

MIDDLEWARE = [
    "django_tenants.middleware.main.TenantMainMiddleware"
    if name == "tenants.middleware.TenantResolutionMiddleware"
    else name
    for name in MIDDLEWARE
]
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
