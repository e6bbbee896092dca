"""Plan rules: what a tenant may do, derived from its plan and the platform's overrides.

Plans themselves are rows (``tenants.Plan``), so the platform can add plans in the
admin; ``starter`` and ``enterprise`` are created by data migration 0002 with the
seed's values. Every other module asks this one for a tenant's limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

DEFAULT_PLAN = "starter"

# The platform's overrides of a plan's values, as API fields and the Tenant fields that hold them;
# null means "as the plan says".
OVERRIDE_FIELDS = {
    "max_users": "max_users_override",
    "features": "features_override",
    "rate_limit_per_minute": "rate_limit_override",
}


class _Governed(Protocol):
    plan: object
    max_users_override: int | None
    features_override: list[str] | None
    rate_limit_override: int | None


@dataclass(frozen=True)
class Limits:
    max_users: int
    features: tuple[str, ...]
    rate_limit_per_minute: int


def limits_for(tenant: _Governed) -> Limits:
    """The limits in force for ``tenant``: its plan's values unless the platform overrode them."""
    plan = tenant.plan
    values = {}
    for key, field in OVERRIDE_FIELDS.items():
        override = getattr(tenant, field)
        values[key] = override if override is not None else getattr(plan, key)
    return Limits(
        max_users=values["max_users"],
        features=tuple(values["features"]),
        rate_limit_per_minute=values["rate_limit_per_minute"],
    )


def has_feature(tenant: _Governed, feature: str) -> bool:
    return feature in limits_for(tenant).features


def overrides_of(tenant: _Governed) -> dict[str, object]:
    """The platform's overrides as the API names them (null: the plan's value applies)."""
    return {key: getattr(tenant, field) for key, field in OVERRIDE_FIELDS.items()}
