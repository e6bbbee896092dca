"""Refusals of the rules on a tenant's users and settings, each with the HTTP status that says why."""

from __future__ import annotations

from core.errors import Conflict, Forbidden, Invalid, NotFound


class InvalidAccountInput(Invalid):
    """A value the rules refuse (a weak password, an unknown time zone)."""


class UserLimitReached(Forbidden):
    pass


class PlanGovernedSetting(Forbidden):
    pass


class UserNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("User not found")


class LastAdmin(Conflict):
    pass


class UsernameTaken(Conflict):
    pass
