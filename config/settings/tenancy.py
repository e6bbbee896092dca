"""Tenants: the registry models, host names, and the pool of schemas provisioning takes from."""

from config.env import env_bool, env_int, env_list, env_str

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# The users of a tenant, whose rows count against the plan's max_users (tenants.selectors.user_counts).
TENANT_USER_MODEL = "accounts.TenantUser"

TENANT_BASE_DOMAIN = env_str("TENANT_BASE_DOMAIN", "localhost").lower()
# Hosts that serve the platform (public schema); X-Tenant-ID selects a tenant there.
PUBLIC_HOSTS = sorted({TENANT_BASE_DOMAIN, "localhost", "127.0.0.1", "[::1]"} | set(env_list("PUBLIC_HOSTS")))
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", f"{TENANT_BASE_DOMAIN},.{TENANT_BASE_DOMAIN},127.0.0.1,[::1]")

# Schemas migrated in advance, so that provisioning a tenant is a rename (tenants.provisioning).
TENANT_POOL_SIZE = env_int("TENANT_POOL_SIZE", 20)
# Refill the pool from a background thread after each provisioning (else: `manage.py tenant_pool`).
TENANT_POOL_REFILL = env_bool("TENANT_POOL_REFILL", False)
