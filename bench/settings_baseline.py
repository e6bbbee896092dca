"""Benchmark: the same views and data with tenancy and monthly metering switched off (see bench.modes)."""

from bench.modes import unmetered
from config.settings import *  # noqa: F403
from config.settings import MIDDLEWARE

unmetered()

MIDDLEWARE = [
    "bench.modes.BaselineTenantMiddleware" if name == "tenants.middleware.TenantResolutionMiddleware" else name
    for name in MIDDLEWARE
]
