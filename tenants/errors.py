"""Refusals of the registry's rules, each with the HTTP status that says why."""

from __future__ import annotations

from core.errors import Conflict, Invalid, NotFound


class TenantNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Tenant not found")


class TenantAlreadyExists(Conflict):
    def __init__(self) -> None:
        super().__init__("Tenant already exists")


class UnknownPlan(Invalid):
    def __init__(self, plan_id: str) -> None:
        super().__init__(f"Unknown plan: {plan_id}", field="plan")


class InvalidTenantId(Invalid):
    def __init__(self, message: str) -> None:
        super().__init__(message, field="id")
