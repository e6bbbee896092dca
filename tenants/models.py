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
    requests_per_month = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="API requests per calendar month (UTC); empty: unlimited"
    )

    class Meta:
        ordering = ["max_users", "id"]

    def __str__(self) -> str:
        return self.id


class Tenant(TenantMixin):
    """A customer company. Its id is also its schema name and its subdomain label.

    Its state is ``active`` or ``suspended`` (the ``active`` flag), or ``deleted`` while
    ``deleted_at`` is set: unreachable, its data kept until ``purge_after``, and its
    ``active`` flag kept too, so that a restore brings back the state it had.
    """

    ACTIVE, SUSPENDED, DELETED = "active", "suspended", "deleted"

    id = models.CharField(primary_key=True, max_length=63, validators=[validate_tenant_id])
    name = models.CharField(max_length=200)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="tenants")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Platform overrides of the plan's values; null means "as the plan says".
    max_users_override = models.PositiveIntegerField(null=True, blank=True)
    features_override = models.JSONField(null=True, blank=True)
    rate_limit_override = models.PositiveIntegerField(null=True, blank=True)
    requests_per_month_override = models.PositiveBigIntegerField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    purge_after = models.DateTimeField(null=True, blank=True, editable=False)

    # Provisioning is done explicitly by tenants.services, inside one transaction.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ["created_at", "id"]

    @property
    def state(self) -> str:
        if self.deleted_at is not None:
            return self.DELETED
        return self.ACTIVE if self.active else self.SUSPENDED

    @property
    def in_service(self) -> bool:
        """Serving its users: neither suspended nor deleted (the ``"active"`` of platform answers)."""
        return self.state == self.ACTIVE

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


class TenantTombstone(models.Model):
    """What stays of a purged tenant: who it was, when it went, and the platform's audit trail of it.

    The tenant's schema (its users, settings and their own audit trail) is gone; the events the
    platform recorded about the tenant itself (created, changed, suspended, deleted, purged) are
    copied here, so that the record of the platform's actions outlives the data.
    """

    tenant_id = models.CharField(max_length=63, db_index=True, help_text="Free for a new tenant since the purge")
    name = models.CharField(max_length=200)
    plan_id = models.CharField(max_length=32)
    created_at = models.DateTimeField()
    deleted_at = models.DateTimeField()
    purged_at = models.DateTimeField(default=timezone.now)
    audit_trail = models.JSONField(default=list, help_text="The platform's events about the tenant, oldest first")

    class Meta:
        ordering = ["-purged_at", "-id"]

    def __str__(self) -> str:
        return f"{self.tenant_id} (purged {self.purged_at:%Y-%m-%d})"


class StaffToken(HashedToken):
    """An API token of a platform staff member (public schema)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_tokens")


class RateLimitCounter(models.Model):
    """Requests counted under one key in one fixed window; used when no REDIS_URL is set.

    Keys: a tenant's id for its plan's rate limit, ``signin:...`` for the sign-in throttle.
    """

    key = models.CharField(max_length=200)
    window_start = models.BigIntegerField(help_text="Unix time of the window's first second")
    expires_at = models.BigIntegerField(db_index=True, help_text="Unix time the window ends")
    hits = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window_start"], name="one_counter_per_key_and_window")]

    def __str__(self) -> str:
        return f"{self.key}@{self.window_start}: {self.hits}"


class UsageCounter(models.Model):
    """API requests of one tenant in one calendar month (UTC), when no REDIS_URL is set (tenants.metering)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    period = models.CharField(max_length=7, help_text="YYYY-MM")
    requests = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "period"], name="one_usage_counter_per_month")]

    def __str__(self) -> str:
        return f"{self.tenant_id}@{self.period}: {self.requests}"
