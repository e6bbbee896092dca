"""Plan rules: what a tenant may do, derived from its plan and the platform's overrides.

Plans themselves are rows (``tenants.Plan``), so the platform can add plans in the
admin; ``starter`` and ``enterprise`` are created by a data migration with the
seed's values. Every other module asks this one for a tenant's limits.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PLAN = "starter"

# The plans every installation starts with (data migration 0002).
BUILTIN_PLANS = {
    "starter": {"name": "Starter", "max_users": 10, "features": ["api"], "rate_limit_per_minute": 60},
    "enterprise": {
        "name": "Enterprise",
        "max_users": 100,
        "features": ["analytics", "api", "export"],
        "rate_limit_per_minute": 600,
    },
}


@dataclass(frozen=True)
class Limits:
    max_users: int
    features: tuple[str, ...]
    rate_limit_per_minute: int


def limits_for(tenant) -> Limits:
    """The limits in force for ``tenant``: its plan's values unless the platform overrode them."""
    plan = tenant.plan
    features = tenant.features_override if tenant.features_override is not None else plan.features
    return Limits(
        max_users=tenant.max_users_override if tenant.max_users_override is not None else plan.max_users,
        features=tuple(features),
        rate_limit_per_minute=(
            tenant.rate_limit_override if tenant.rate_limit_override is not None else plan.rate_limit_per_minute
        ),
    )


def plan_settings(tenant) -> dict:
    """The plan-governed settings as the API shows them (the seed's shape)."""
    limits = limits_for(tenant)
    return {"max_users": limits.max_users, "features": list(limits.features)}


def has_feature(tenant, feature: str) -> bool:
    return feature in limits_for(tenant).features
