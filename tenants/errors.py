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


class TenantDeleted(Conflict):
    def __init__(self) -> None:
        super().__init__("Tenant is deleted; restore it first")


class TenantNotDeleted(Conflict):
    def __init__(self) -> None:
        super().__init__("Tenant is not deleted")


class GracePeriodOver(Conflict):
    def __init__(self) -> None:
        super().__init__("The grace period is over: the tenant is due to be purged")


class NotOnCitus(Conflict):
    def __init__(self) -> None:
        super().__init__("Tenant placement needs a Citus cluster; this database is a single PostgreSQL server")


class UnknownNode(Invalid):
    def __init__(self, node: str, nodes: list[str]) -> None:
        super().__init__(f"Unknown node: {node}; the workers are {', '.join(nodes) or 'none'}", field="node")


class AlreadyOnNode(Conflict):
    def __init__(self, node: str) -> None:
        super().__init__(f"Tenant is already on {node}")


class NotDistributed(Conflict):
    def __init__(self) -> None:
        super().__init__("Tenant schema is not a distributed schema of the cluster, so it cannot be moved")


class MoveRunning(Conflict):
    def __init__(self) -> None:
        super().__init__("A move of this tenant is already running")
