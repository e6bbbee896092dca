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


class ApiKey(HashedToken):
    """A key of the tenant itself, not of a user: for scripts and integrations (see ``tenants.credentials``).

    Found by its public ``key_id`` and checked against the digest of the whole key. Revoking
    deletes the row, and the delete tells every worker's key cache at commit (``accounts.keys``).
    """

    key_id = models.CharField(max_length=12, unique=True, editable=False)
    prefix = models.CharField(max_length=100, editable=False, help_text="The public start of the key")
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Written at most once a minute per key and process (accounts.keys), never per request.
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @classmethod
    def issue(cls, **fields: object) -> tuple[ApiKey, str]:
        raise NotImplementedError("A key names its tenant: make one with accounts.services.create_api_key")

    @classmethod
    def lookup(cls, raw_key: str) -> ApiKey | None:
        raise NotImplementedError("Keys are checked by accounts.keys.authenticate, by key id and digest")


class RefreshToken(HashedToken):
    """A refresh token of a JWT pair (accounts.service_tokens): used once, then replaced by the next.

    Tokens of one sign-in share a ``family``; a refresh token used a second time retires its
    whole family (it was copied). Held by a user, or by an API key (deleted with it).
    """

    user = models.ForeignKey(TenantUser, null=True, on_delete=models.CASCADE, related_name="refresh_tokens")
    api_key = models.ForeignKey(ApiKey, null=True, on_delete=models.CASCADE, related_name="refresh_tokens")
    family = models.CharField(max_length=32, db_index=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
