"""The Django admin for platform operators (public host, /django-admin/)."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core.audit import Actor
from core.errors import ServiceError
from core.jobs.admin import job_progress
from core.jobs.selectors import jobs_of
from tenants import plans, selectors, services
from tenants.models import Domain, Plan, StaffToken, Tenant, TenantTombstone

SHOWN_EXPORTS = 10

CONFIRMATIONS = {
    "suspend": (
        "suspend",
        "Suspend these tenants?",
        'Suspending a tenant locks all of its users out: its pages show "This workspace is suspended" and its API '
        'answers <code>403 {"error": "Tenant account is suspended"}</code>. Its data stays, and <em>Activate</em> '
        "brings it back.",
    ),
    "delete_tenants": (
        "delete",
        "Delete these tenants?",
        "A deleted tenant is gone at once for its users: its addresses and its API answer "
        '<code>404 {"error": "Unknown tenant"}</code>. Its data is kept for {days} days, during which '
        "<em>Restore</em> brings it back as it was; then it is purged for good, and its id is free again.",
    ),
    "restore_tenants": (
        "restore",
        "Restore these tenants?",
        "Restoring a deleted tenant brings it back with its data, in the state it had (active or suspended).",
    ),
}


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(Tenant.ACTIVE, "active"), (Tenant.SUSPENDED, "suspended"), (Tenant.DELETED, "deleted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> QuerySet[Tenant]:
        live = queryset.filter(deleted_at__isnull=True)
        return {
            Tenant.ACTIVE: live.filter(active=True),
            Tenant.SUSPENDED: live.filter(active=False),
            Tenant.DELETED: queryset.filter(deleted_at__isnull=False),
        }.get(self.value(), queryset)


class DomainInline(admin.TabularInline):
    """Shown, not edited: a tenant's domains are created with it by provisioning."""

    model = Domain
    extra = 0
    fields = ["domain", "is_primary"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "plan",
        "state",
        "user_count",
        "requests_this_month",
        "monthly_quota",
        "storage",
        "primary_domain",
        "created_at",
    ]
    list_filter = ["plan", StateFilter]
    search_fields = ["id", "name"]
    ordering = ["created_at", "id"]
    inlines = [DomainInline]
    actions = ["suspend", "activate", "export_tenants", "delete_tenants", "restore_tenants"]
    readonly_fields = [
        "id",
        "state",
        "purge_after",
        "exports",
        "created_at",
        "schema_name",
        "user_count",
        "domain_list",
        "effective_max_users",
        "effective_features",
        "effective_rate_limit",
        "monthly_quota",
        "requests_this_month",
        "storage",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "schema_name",
                    "name",
                    "plan",
                    "state",
                    "active",
                    "purge_after",
                    "created_at",
                    "user_count",
                    "domain_list",
                ]
            },
        ),
        (
            "Limits in force",
            {
                "description": "The plan's values, or the override where one is set.",
                "fields": ["effective_max_users", "effective_features", "effective_rate_limit", "monthly_quota"],
            },
        ),
        ("Usage this month (UTC)", {"fields": ["requests_this_month", "storage"]}),
        (
            "Overrides of the plan",
            {
                "description": "Leave empty to follow the plan.",
                "fields": [
                    "max_users_override",
                    "features_override",
                    "rate_limit_override",
                    "requests_per_month_override",
                ],
            },
        ),
        (
            "Exports",
            {
                "description": "Full archives of the tenant, newest first (the action Export selected tenants "
                "makes one).",
                "fields": ["exports"],
            },
        ),
    ]

    class Media:
        js = ["jobs/progress.js"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan").prefetch_related("domains")

    def has_add_permission(self, request) -> bool:
        # A new tenant needs its schema and domain: it is created through the platform API,
        # which provisions all three in one transaction (tenants.services.provision_tenant).
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Django's own delete would drop the row at once: tenants are deleted by the action below,
        # which keeps their data for the grace period.
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # A deleted tenant is shown, not edited: only Restore changes it.
        if obj is not None and obj.deleted_at is not None:
            return False
        return super().has_change_permission(request, obj)

    @admin.display(description="state")
    def state(self, tenant: Tenant) -> str:
        if tenant.deleted_at is not None and tenant.purge_after is not None:
            return f"deleted (purged after {tenant.purge_after:%Y-%m-%d %H:%M} UTC)"
        return tenant.state

    @admin.display(description="exports")
    def exports(self, tenant: Tenant) -> SafeString:
        jobs = list(jobs_of(tenant.id, (services.TENANT_EXPORT,))[:SHOWN_EXPORTS])
        if not jobs:
            return format_html("{}", "None yet.")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((f"#{job.pk}", f"{job.created_at:%Y-%m-%d %H:%M} UTC", job_progress(job)) for job in jobs),
        )
        return format_html("<table><tr><th>job</th><th>requested</th><th>progress</th></tr>{}</table>", rows)

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # The page's usage in a few queries, not a few per row.
        usages = selectors.usages(list(changelist.result_list))
        for tenant in changelist.result_list:
            tenant.usage_value = usages[tenant.id]
        return changelist

    def _usage(self, tenant: Tenant) -> selectors.Usage:
        value = getattr(tenant, "usage_value", None)
        return value if value is not None else selectors.usage(tenant)

    @admin.display(description="users")
    def user_count(self, tenant: Tenant) -> int:
        return self._usage(tenant).users

    @admin.display(description="requests this month")
    def requests_this_month(self, tenant: Tenant) -> int:
        return self._usage(tenant).requests

    @admin.display(description="monthly quota")
    def monthly_quota(self, tenant: Tenant) -> str:
        quota = tenant.limits.requests_per_month
        return "unlimited" if quota is None else str(quota)

    @admin.display(description="storage")
    def storage(self, tenant: Tenant) -> str:
        return filesizeformat(self._usage(tenant).storage_bytes)

    @admin.display(description="domains")
    def domain_list(self, tenant: Tenant) -> str:
        return ", ".join(selectors.domain_names(tenant)) or "-"

    @admin.display(description="max users")
    def effective_max_users(self, tenant: Tenant) -> int:
        return tenant.limits.max_users

    @admin.display(description="features")
    def effective_features(self, tenant: Tenant) -> str:
        return ", ".join(tenant.limits.features) or "none"

    @admin.display(description="requests per minute")
    def effective_rate_limit(self, tenant: Tenant) -> int:
        return tenant.limits.rate_limit_per_minute

    @admin.display(description="domain")
    def primary_domain(self, tenant: Tenant) -> str:
        primary = [domain.domain for domain in tenant.domains.all() if domain.is_primary]
        return primary[0] if primary else "-"

    def save_model(self, request, tenant: Tenant, form, change: bool) -> None:
        """The change form writes through the services, audited like the API."""
        actor = Actor.of(request.user)
        changed = set(form.changed_data)
        changes = {field: form.cleaned_data[field] for field in ("name",) if field in changed}
        if "plan" in changed:
            changes["plan"] = form.cleaned_data["plan"].pk
        for key, field in plans.OVERRIDE_FIELDS.items():
            if field in changed:
                changes[key] = form.cleaned_data[field]
        if changes:
            services.update_tenant(tenant.pk, changes, actor=actor)
        if "active" in changed:
            services.set_tenant_active(tenant.pk, form.cleaned_data["active"], actor=actor)

    def _set_active(self, request, queryset, active: bool) -> None:
        verb = "Reactivated" if active else "Suspended"
        effect = "their users can sign in again" if active else "their users can no longer sign in or use the API"

        def change(tenant_id: str, actor: Actor) -> None:
            services.set_tenant_active(tenant_id, active, actor=actor)

        self._each(request, queryset, change, verb + " {n} tenant(s): {ids}; " + effect + ".")

    def _confirmation(self, request, queryset, action: str) -> TemplateResponse | None:
        """The page that asks first, like Django's own delete action; None once the operator confirmed."""
        if request.POST.get("confirm") == "yes":
            return None
        verb, title, explanation = CONFIRMATIONS[action]
        return TemplateResponse(
            request,
            "admin/tenants/tenant/confirm_action.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "action": action,
                "verb": verb,
                "explanation": explanation.replace("{days}", str(settings.TENANT_DELETE_GRACE_DAYS)),
                "opts": self.model._meta,
                "tenants": list(queryset.order_by("id")),
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def _each(self, request, queryset, change, done: str) -> None:
        """Apply a service to each selected tenant; report what was done and what was refused."""
        changed, refused = [], []
        for tenant_id in queryset.order_by("id").values_list("id", flat=True):
            try:
                change(tenant_id, actor=Actor.of(request.user))
                changed.append(tenant_id)
            except ServiceError as exc:
                refused.append(f"Not done for {tenant_id}: {exc}")
        if changed:
            self.message_user(request, done.format(n=len(changed), ids=", ".join(changed)), messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.ERROR)

    @admin.action(description="Suspend selected tenants")
    def suspend(self, request, queryset) -> TemplateResponse | None:
        # Suspending locks every user of a tenant out: ask first.
        confirmation = self._confirmation(request, queryset, "suspend")
        if confirmation is None:
            self._set_active(request, queryset, False)
        return confirmation

    @admin.action(description="Activate selected tenants")
    def activate(self, request, queryset) -> None:
        self._set_active(request, queryset, True)

    @admin.action(description="Delete selected tenants (kept for the grace period)")
    def delete_tenants(self, request, queryset) -> TemplateResponse | None:
        confirmation = self._confirmation(request, queryset, "delete_tenants")
        if confirmation is None:
            until = timezone.now() + datetime.timedelta(days=settings.TENANT_DELETE_GRACE_DAYS)
            self._each(
                request,
                queryset,
                services.delete_tenant,
                "Deleted {n} tenant(s): {ids}; they can be restored until " + f"{until:%Y-%m-%d} (UTC).",
            )
        return confirmation

    @admin.action(description="Restore selected deleted tenants")
    def restore_tenants(self, request, queryset) -> TemplateResponse | None:
        confirmation = self._confirmation(request, queryset, "restore_tenants")
        if confirmation is None:
            self._each(request, queryset, services.restore_tenant, "Restored {n} tenant(s): {ids}.")
        return confirmation

    @admin.action(description="Export selected tenants (full archive)")
    def export_tenants(self, request, queryset) -> None:
        self._each(
            request,
            queryset,
            services.request_export,
            "Queued the export of {n} tenant(s): {ids}; each tenant's page lists its exports with their progress.",
        )


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "max_users", "features", "rate_limit_per_minute", "requests_per_month"]


@admin.register(TenantTombstone)
class TenantTombstoneAdmin(admin.ModelAdmin):
    """What stays of purged tenants: read only."""

    list_display = ["tenant_id", "name", "plan_id", "created_at", "deleted_at", "purged_at"]
    search_fields = ["tenant_id", "name"]
    readonly_fields = ["tenant_id", "name", "plan_id", "created_at", "deleted_at", "purged_at", "audit_trail"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StaffToken)
class StaffTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "name", "created_at"]
    readonly_fields = ["prefix", "user", "created_at"]
    fields = ["prefix", "user", "name", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False
