"""The Django admin for platform operators (public host, /django-admin/)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from core.audit import Actor
from tenants import plans, selectors, services
from tenants.models import Domain, Plan, StaffToken, Tenant


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
    list_display = ["id", "name", "plan", "active", "user_count", "primary_domain", "created_at"]
    list_filter = ["plan", "active"]
    search_fields = ["id", "name"]
    ordering = ["created_at", "id"]
    inlines = [DomainInline]
    actions = ["suspend", "activate"]
    readonly_fields = [
        "id",
        "created_at",
        "schema_name",
        "user_count",
        "domain_list",
        "effective_max_users",
        "effective_features",
        "effective_rate_limit",
    ]
    fieldsets = [
        (None, {"fields": ["id", "schema_name", "name", "plan", "active", "created_at", "user_count", "domain_list"]}),
        (
            "Limits in force",
            {
                "description": "The plan's values, or the override where one is set.",
                "fields": ["effective_max_users", "effective_features", "effective_rate_limit"],
            },
        ),
        (
            "Overrides of the plan",
            {
                "description": "Leave empty to follow the plan.",
                "fields": ["max_users_override", "features_override", "rate_limit_override"],
            },
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan").prefetch_related("domains")

    def has_add_permission(self, request) -> bool:
        # A new tenant needs its schema and domain: it is created through the platform API,
        # which provisions all three in one transaction (tenants.services.provision_tenant).
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        counts = selectors.user_counts(tenant.id for tenant in changelist.result_list)
        for tenant in changelist.result_list:
            tenant.user_count_value = counts.get(tenant.id, 0)
        return changelist

    @admin.display(description="users")
    def user_count(self, tenant: Tenant) -> int:
        value = getattr(tenant, "user_count_value", None)
        return value if value is not None else selectors.user_counts([tenant.id]).get(tenant.id, 0)

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
        tenant_ids = list(queryset.values_list("id", flat=True))
        for tenant_id in tenant_ids:
            services.set_tenant_active(tenant_id, active, actor=Actor.of(request.user))
        verb = "Reactivated" if active else "Suspended"
        effect = "their users can sign in again" if active else "their users can no longer sign in or use the API"
        self.message_user(
            request, f"{verb} {len(tenant_ids)} tenant(s): {', '.join(tenant_ids)}; {effect}.", messages.SUCCESS
        )

    @admin.action(description="Suspend selected tenants")
    def suspend(self, request, queryset) -> TemplateResponse | None:
        # Suspending locks every user of a tenant out: ask first, like Django's own delete action.
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request,
                "admin/tenants/tenant/confirm_suspend.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Suspend these tenants?",
                    "opts": self.model._meta,
                    "tenants": list(queryset.order_by("id")),
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
            )
        self._set_active(request, queryset, False)
        return None

    @admin.action(description="Activate selected tenants")
    def activate(self, request, queryset) -> None:
        self._set_active(request, queryset, True)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "max_users", "features", "rate_limit_per_minute"]


@admin.register(StaffToken)
class StaffTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "name", "created_at"]
    readonly_fields = ["prefix", "user", "created_at"]
    fields = ["prefix", "user", "name", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False
