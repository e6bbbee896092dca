"""Every JSON shape of both APIs, once: the views render with these serializers and the OpenAPI
schema is generated from them, so the documentation cannot drift from the answers.

Request bodies of the platform API are here too; those of the tenant's users and settings
live in ``accounts.inputs``, shared with the dashboard's forms.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.inputs import FirstAdminSerializer
from accounts.models import Role
from core.validation import StrictCharField, StrictIntegerField, StrictSerializer

# --- Fields -----------------------------------------------------------------------------


@extend_schema_field({"type": "integer", "description": "Unix time, seconds."})
class UnixTimeField(serializers.Field):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value: object) -> int:
        return int(value.timestamp())


@extend_schema_field({"type": "number", "description": "Unix time, seconds, with fractions."})
class PreciseUnixTimeField(UnixTimeField):
    def to_representation(self, value: object) -> float:
        return value.timestamp()


class TrueField(serializers.BooleanField):
    """A key that is always ``true`` in its answer (``{"suspended": true, ...}``)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(read_only=True, source="*", **kwargs)

    def to_representation(self, value: object) -> bool:
        return True


# --- Shared -----------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="What went wrong, in one sentence.")
    detail = serializers.JSONField(required=False, help_text="Messages per field, for invalid fields.")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class EventActorSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["platform", "tenant", "system"], source="actor_kind")
    name = serializers.CharField(source="actor")


class EventSerializer(serializers.Serializer):
    id = serializers.CharField()
    created_at = PreciseUnixTimeField()
    actor = EventActorSerializer(source="*")
    action = serializers.CharField()
    target = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


# --- Tenants -----------------------------------------------------------------------------


class PlanSettingsSerializer(serializers.Serializer):
    """The plan-governed settings of the seed's tenant shape."""

    max_users = serializers.IntegerField()
    features = serializers.ListField(child=serializers.CharField())


class TenantSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    plan = serializers.CharField(source="plan_id")
    active = serializers.BooleanField()
    created_at = UnixTimeField()
    settings = PlanSettingsSerializer(source="limits")


class PlacementSerializer(serializers.Serializer):
    node = serializers.CharField(help_text="The Citus worker holding the tenant's schema, host:port.")


class TenantDetailSerializer(TenantSerializer):
    """A tenant as the platform sees it (``tenants.selectors.tenant_details``)."""

    user_count = serializers.IntegerField()
    domains = serializers.ListField(child=serializers.CharField(), source="domain_names")
    placement = PlacementSerializer(
        allow_null=True, help_text="Where the tenant's schema lives on a Citus cluster; null on a single server."
    )


class NodeSerializer(serializers.Serializer):
    node = serializers.CharField(help_text="host:port")
    tenants = serializers.IntegerField(help_text="Tenants whose schema lives on the node.")
    bytes = serializers.IntegerField(help_text="Size of those schemas on the node: tables, indexes, TOAST.")


class NodeListSerializer(serializers.Serializer):
    nodes = NodeSerializer(many=True)


class TenantMoveSerializer(StrictSerializer):
    node = StrictCharField(max_length=300, help_text="The worker to move the tenant to, host:port (GET /admin/nodes).")


class SuspendedSerializer(serializers.Serializer):
    suspended = TrueField()
    tenant = serializers.CharField(source="id")


class ActivatedSerializer(serializers.Serializer):
    activated = TrueField()
    tenant = serializers.CharField(source="id")


class TenantCreateSerializer(StrictSerializer):
    id = StrictCharField(trim_whitespace=False)
    name = StrictCharField(max_length=200)
    plan = StrictCharField(required=False, max_length=32)
    admin = FirstAdminSerializer(required=False)


class FeatureListField(serializers.ListField):
    child = StrictCharField(max_length=50)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(allow_empty=True, max_length=50, **kwargs)


class TenantUpdateSerializer(StrictSerializer):
    """The platform's changes to a tenant; limits given as null follow the plan again."""

    name = StrictCharField(required=False, max_length=200)
    plan = StrictCharField(required=False, max_length=32)
    max_users = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=1_000_000)
    features = FeatureListField(required=False, allow_null=True)
    rate_limit_per_minute = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=10_000_000)

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("Nothing to change.")
        return attrs


# --- Inside a tenant ------------------------------------------------------------------------


class UserSerializer(serializers.Serializer):
    """The seed's user (string ids), plus the fields a real client needs. Never the password."""

    id = serializers.CharField(help_text="Per tenant, as a string.")
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.values)
    username = serializers.CharField()
    email = serializers.CharField(allow_blank=True)
    created_at = UnixTimeField()


class WorkspaceSettingsSerializer(serializers.Serializer):
    """Every setting of a tenant (``accounts.selectors.TenantSettings``): the plan's, then the workspace's."""

    max_users = serializers.IntegerField(source="limits.max_users")
    features = serializers.ListField(child=serializers.CharField(), source="limits.features")
    rate_limit_per_minute = serializers.IntegerField(source="limits.rate_limit_per_minute")
    display_name = serializers.CharField()
    timezone = serializers.CharField(source="workspace.timezone")
    theme_color = serializers.CharField(source="workspace.theme_color")


class TenantProfileSerializer(TenantSerializer):
    """``GET /api/me``: the tenant with all its settings (``current_settings``)."""

    settings = WorkspaceSettingsSerializer(source="current_settings")


class SettingsSerializer(serializers.Serializer):
    tenant = serializers.CharField(source="tenant.id")
    settings = WorkspaceSettingsSerializer(source="*")


class SettingsUpdatedSerializer(serializers.Serializer):
    updated = TrueField()
    settings = WorkspaceSettingsSerializer(source="*")


class ExportSerializer(TenantProfileSerializer):
    """Everything about the tenant in one document: the profile and every user (``all_users``)."""

    users = UserSerializer(many=True, source="all_users")


class RoleCountsSerializer(serializers.Serializer):
    admin = serializers.IntegerField()
    member = serializers.IntegerField()


class DayCountSerializer(serializers.Serializer):
    date = serializers.DateField()
    count = serializers.IntegerField()


class AnalyticsSerializer(serializers.Serializer):
    tenant = serializers.CharField()
    users_by_role = RoleCountsSerializer()
    users_created_per_day = DayCountSerializer(many=True)
    total_users = serializers.IntegerField()
