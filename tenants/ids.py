"""The rule for tenant ids, which double as schema names and subdomain labels."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# A DNS label: lower-case letters, digits and hyphens, starting with a letter,
# not ending with a hyphen, at most 63 characters (also PostgreSQL's identifier limit).
TENANT_ID_PATTERN = re.compile(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")

# Names that would collide with the platform's hosts, routes (/admin/tenants/import) or PostgreSQL's own schemas.
RESERVED_TENANT_IDS = frozenset(
    {"public", "www", "admin", "api", "static", "media", "django-admin", "information-schema", "template", "import"}
)
# PostgreSQL reserves schema names starting with pg_; ids cannot hold "_", but refuse the look-alikes too.
RESERVED_PREFIXES = ("pg_", "pg-")

INVALID_ID_MESSAGE = (
    "Invalid tenant id: use 1 to 63 lower-case letters, digits and hyphens, "
    "starting with a letter and not ending with a hyphen"
)


def is_well_formed_tenant_id(value: object) -> bool:
    return isinstance(value, str) and TENANT_ID_PATTERN.match(value) is not None


def validate_tenant_id(value: object) -> None:
    """Raise ValidationError unless ``value`` may name a new tenant."""
    if not is_well_formed_tenant_id(value):
        raise ValidationError(INVALID_ID_MESSAGE, code="invalid")
    if value in RESERVED_TENANT_IDS or value.startswith(RESERVED_PREFIXES):
        raise ValidationError(f"Tenant id '{value}' is reserved", code="reserved")
