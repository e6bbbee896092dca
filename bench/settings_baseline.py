"""Benchmark: the same views and data with tenancy switched off (see bench.modes)."""

from config.settings import *  # noqa: F403
from config.settings import MIDDLEWARE

MIDDLEWARE = [
    "bench.modes.BaselineTenantMiddleware" if name == "tenants.middleware.TenantResolutionMiddleware" else name
    for name in MIDDLEWARE
]
