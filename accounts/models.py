"""People who work inside one tenant. These tables exist in every tenant schema."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from core.models import HashedToken

USERNAME_VALIDATOR = RegexValidator(
    r"\A[a-z0-9][a-z0-9._-]{0,149}\Z",
    "Use 1 to 150 lower-case letters, digits, dots, hyphens and underscores, starting with a letter or digit",
)


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class TenantUser(AbstractBaseUser):
    """A user of one tenant; ids are per tenant, so Alice of acme and Charlie of globex are both "1"."""

    username = models.CharField(max_length=150, unique=True, validators=[USERNAME_VALIDATOR])
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    email = models.EmailField(blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    USERNAME_FIELD = "username"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["id"]

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    # A tenant user is never platform staff, whatever host it reaches.
    is_staff = False
    is_superuser = False

    def __str__(self) -> str:
        return self.username


class AuthToken(HashedToken):
    """An API token of a tenant user; it lives, and is only valid, in its tenant's schema."""

    user = models.ForeignKey(TenantUser, on_delete=models.CASCADE, related_name="tokens")


class WorkspaceSettings(models.Model):
    """The settings a tenant edits itself (one row per tenant schema).

    Plan-governed values (user limit, features, rate limit) are not here: they
    live in the public registry, where only the platform can change them.
    """

    singleton = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    display_name = models.CharField(max_length=100, blank=True, default="")
    timezone = models.CharField(max_length=64, default="UTC")
    theme_color = models.CharField(max_length=7, default="#2563eb")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(singleton=1), name="workspace_settings_singleton")]

    def __str__(self) -> str:
        return self.display_name or "workspace settings"
