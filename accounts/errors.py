"""Refusals of the rules on a tenant's users and settings, each with the HTTP status that says why."""

from __future__ import annotations


class AccountError(Exception):
    """A rule refused the change; ``status`` is the HTTP status that says why."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UserLimitReached(AccountError):
    status = 403


class LastAdmin(AccountError):
    status = 409


class UsernameTaken(AccountError):
    status = 409


class UserNotFound(AccountError):
    status = 404


class PlanGovernedSetting(AccountError):
    status = 403
