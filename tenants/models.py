"""The tenant registry, kept in the public schema."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_tenants.models import DomainMixin, TenantMixin

from core.models import HashedToken
from tenants.ids import validate_tenant_id
from tenants.plans import Limits, limits_for


class Plan(models.Model):
    """A subscription plan: the limits a tenant gets unless the platform overrides them."""

    id = models.SlugField(primary_key=True, max_length=32)
    name = models.CharField(max_length=100)
    max_users = models.PositiveIntegerField()
    features = models.JSONField(default=list, help_text='Feature flags, e.g. ["api", "export"]')
    rate_limit_per_minute = models.PositiveIntegerField(help_text="API requests per minute for the whole tenant")

    class Meta:
        ordering = ["max_users", "id"]

    def __str__(self) -> str:
        return self.id


class Tenant(TenantMixin):
    """A customer company. Its id is also its schema name and its subdomain label."""

    id = models.CharField(primary_key=True, max_length=63, validators=[validate_tenant_id])
    name = models.CharField(max_length=200)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Platform overrides of the plan's values; null means "as the plan says".
    max_users_override = models.PositiveIntegerField(null=True, blank=True)
    features_override = models.JSONField(null=True, blank=True)
    rate_limit_override = models.PositiveIntegerField(null=True, blank=True)

    # Provisioning is done explicitly by tenants.services, inside one transaction.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ["created_at", "id"]

    @property
    def limits(self) -> Limits:
        """The limits in force: the plan's values unless the platform overrode them."""
        return limits_for(self)

    def save(self, *args: object, **kwargs: object) -> None:
        self.schema_name = self.id
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.id


class Domain(DomainMixin):
    """A host name that routes to a tenant, e.g. ``acme.localhost``."""

    def __str__(self) -> str:
        return self.domain


class StaffToken(HashedToken):
    """An API token of a platform staff member (public schema)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_tokens")


class RateLimitCounter(models.Model):
    """Requests of one tenant in one fixed window; used when no REDIS_URL is set."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    window_start = models.BigIntegerField(help_text="Unix time of the window's first second")
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "window_start"], name="one_counter_per_window")]

    def __str__(self) -> str:
        return f"{self.tenant_id}@{self.window_start}: {self.hits}"
