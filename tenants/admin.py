"""The Django admin for platform operators (public host, /django-admin/)."""

from __future__ import annotations

from django.contrib import admin, messages

from accounts.audit import Actor
from tenants import selectors, services
from tenants.models import Domain, Plan, StaffToken, Tenant


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0
    fields = ["domain", "is_primary"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "plan", "active", "user_count", "primary_domain", "created_at"]
    list_filter = ["plan", "active"]
    search_fields = ["id", "name"]
    ordering = ["created_at", "id"]
    inlines = [DomainInline]
    actions = ["suspend", "activate"]
    readonly_fields = ["id", "created_at", "schema_name"]
    fields = [
        "id",
        "schema_name",
        "name",
        "plan",
        "active",
        "created_at",
        "max_users_override",
        "features_override",
        "rate_limit_override",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan").prefetch_related("domains")

    def has_add_permission(self, request) -> bool:
        # New tenants need a schema: they are created through the platform API or `create_tenant`.
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

    @admin.display(description="domain")
    def primary_domain(self, tenant: Tenant) -> str:
        primary = [domain.domain for domain in tenant.domains.all() if domain.is_primary]
        return primary[0] if primary else "-"

    def _set_active(self, request, queryset, active: bool) -> None:
        tenant_ids = list(queryset.values_list("id", flat=True))
        for tenant_id in tenant_ids:
            services.set_tenant_active(tenant_id, active, actor=Actor.of(request.user))
        verb = "Reactivated" if active else "Suspended"
        self.message_user(request, f"{verb} {len(tenant_ids)} tenant(s): {', '.join(tenant_ids)}", messages.SUCCESS)

    @admin.action(description="Suspend selected tenants")
    def suspend(self, request, queryset) -> None:
        self._set_active(request, queryset, False)

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
