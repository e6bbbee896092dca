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
from core.models import AuditEvent
from core.validation import StrictCharField, StrictIntegerField, StrictSerializer

# --- Fields -----------------------------------------------------------------------------


@extend_schema_field({"type": "integer", "description": "Unix time, seconds."})
class UnixTimeField(serializers.Field):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value: object) -> int:
        return int(value.timestamp())


@extend_schema_field({"type": "integer", "nullable": True, "description": "Unix time, seconds; null if never."})
class OptionalUnixTimeField(UnixTimeField):
    """Unix time, or null (DRF renders a None value as null without calling the field)."""


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
    kind = serializers.ChoiceField(choices=["platform", "tenant", "key", "system"], source="actor_kind")
    name = serializers.CharField(source="actor", help_text='A username; for a key ("key"), its public prefix.')


class EventSerializer(serializers.Serializer):
    id = serializers.CharField()
    created_at = PreciseUnixTimeField()
    actor = EventActorSerializer(source="*")
    action = serializers.CharField()
    target = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class TenantEventActorSerializer(EventActorSerializer):
    """The actor as a tenant sees it: the platform's staff are "platform", never a person's name."""

    name = serializers.SerializerMethodField()

    def get_name(self, event: AuditEvent) -> str:
        return "platform" if event.actor_kind == "platform" else event.actor


class TenantEventSerializer(EventSerializer):
    """An event in the tenant's own trail (``/api/events``); staff see the names (``/admin/tenants/{id}/events``)."""

    actor = TenantEventActorSerializer(source="*")


# --- Jobs --------------------------------------------------------------------------------


class JobSerializer(serializers.Serializer):
    """A background job (``core.jobs.models.Job``) as staff and tenant admins see it."""

    id = serializers.CharField()
    kind = serializers.CharField(help_text="tenant.export, tenant.import, tenant.move, workspace.export, ...")
    tenant = serializers.CharField(source="tenant_id", allow_null=True)
    status = serializers.ChoiceField(choices=["queued", "running", "done", "failed"])
    progress = serializers.IntegerField(min_value=0, max_value=100)
    created_at = UnixTimeField()
    finished_at = UnixTimeField(allow_null=True)
    result = serializers.JSONField(
        allow_null=True, help_text='What the job made; a done export has "download", the URL of its file.'
    )
    error = serializers.CharField(allow_null=True, help_text="Why it failed (or why it is being retried).")

    def to_representation(self, job: object) -> dict:
        """Adds the download URL to a done job's result: ``download_url`` of the context, with the job's id."""
        data = super().to_representation(job)
        data["error"] = data["error"] or None
        link = self.context.get("download_url")
        if link and job.status == "done" and job.artifact:
            path = link.format(id=job.pk)
            request = self.context.get("request")
            data["result"] = {
                **(data["result"] or {}),
                "download": request.build_absolute_uri(path) if request else path,
            }
        return data


class TenantImportSerializer(StrictSerializer):
    """``multipart/form-data``: the archive of a tenant export, and optionally a new id and name."""

    archive = serializers.FileField(help_text="A tenant archive (tar.gz) from a full export.")
    id = StrictCharField(
        required=False, trim_whitespace=False, help_text="The new tenant's id (default: the archive's)."
    )
    name = StrictCharField(required=False, max_length=200, help_text="Its name (default: the archive's).")


# --- Tenants -----------------------------------------------------------------------------


class PlanSettingsSerializer(serializers.Serializer):
    """The plan-governed settings of the seed's tenant shape."""

    max_users = serializers.IntegerField()
    features = serializers.ListField(child=serializers.CharField())


TENANT_STATES = ["active", "suspended", "deleted"]


class TenantSerializer(serializers.Serializer):
    """The seed's tenant; the platform's answers add its ``state``."""

    id = serializers.CharField()
    name = serializers.CharField()
    plan = serializers.CharField(source="plan_id")
    active = serializers.BooleanField(source="in_service", help_text="True when the state is active.")
    state = serializers.ChoiceField(choices=TENANT_STATES)
    created_at = UnixTimeField()
    settings = PlanSettingsSerializer(source="limits")


class PlacementSerializer(serializers.Serializer):
    node = serializers.CharField(help_text="The Citus worker holding the tenant's schema, host:port.")


class TenantDetailSerializer(TenantSerializer):
    """A tenant as the platform sees it (``tenants.selectors.tenant_details``)."""

    user_count = serializers.IntegerField()
    domains = serializers.ListField(child=serializers.CharField(), source="domain_names")
    purge_after = UnixTimeField(allow_null=True, help_text="When a deleted tenant's data goes; null otherwise.")
    placement = PlacementSerializer(
        allow_null=True, help_text="Where the tenant's schema lives on a Citus cluster; null on a single server."
    )


class TenantDeletedSerializer(serializers.Serializer):
    id = serializers.CharField()
    state = serializers.CharField(help_text='Always "deleted".')
    purge_after = UnixTimeField(help_text="From then on the tenant may be purged; until then it can be restored.")


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
    requests_per_month = StrictIntegerField(
        required=False, allow_null=True, min_value=0, max_value=10**12, help_text="null: the plan's quota again."
    )

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
    requests_per_month = serializers.IntegerField(
        source="limits.requests_per_month", allow_null=True, help_text="Monthly request quota; null: unlimited."
    )
    display_name = serializers.CharField()
    timezone = serializers.CharField(source="workspace.timezone")
    theme_color = serializers.CharField(source="workspace.theme_color")


class TenantProfileSerializer(TenantSerializer):
    """``GET /api/me``: the tenant with all its settings (``current_settings``), in the seed's shape."""

    state = None
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


class ApiKeySerializer(serializers.Serializer):
    """A tenant API key as listed: never the key itself."""

    id = serializers.CharField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The public start of the key, to tell keys apart.")
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=["read", "write"]))
    created_at = UnixTimeField()
    expires_at = OptionalUnixTimeField()
    last_used_at = OptionalUnixTimeField(help_text="Updated at most once a minute.")


class ApiKeyCreatedSerializer(ApiKeySerializer):
    """A new key, with the key itself: shown in this answer only, never again."""

    key = serializers.CharField(source="raw_key", help_text="The secret. Store it now: it is never shown again.")


class TokenPairSerializer(serializers.Serializer):
    """A JWT pair (``accounts.service_tokens.TokenPair``)."""

    tenant = serializers.CharField()
    access = serializers.CharField(help_text="A JWT, valid for expires_in seconds: send it as Authorization: Bearer.")
    refresh = serializers.CharField(help_text="Used once, at POST /api/auth/jwt/refresh, for the next pair.")
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


class JwtRequestSerializer(StrictSerializer):
    """A username and password; or nothing, with an API key in the Authorization or X-API-Key header."""

    username = StrictCharField(required=False, max_length=150)
    password = StrictCharField(required=False, max_length=1024, trim_whitespace=False)


class RefreshRequestSerializer(StrictSerializer):
    refresh = StrictCharField(max_length=1024, trim_whitespace=False)


class JwkSerializer(serializers.Serializer):
    kty = serializers.CharField()
    crv = serializers.CharField()
    x = serializers.CharField()
    kid = serializers.CharField()
    use = serializers.CharField()
    alg = serializers.CharField()


class JwksSerializer(serializers.Serializer):
    keys = JwkSerializer(many=True)


class UsageSerializer(serializers.Serializer):
    """A tenant's usage this month (``tenants.selectors.Usage``)."""

    tenant = serializers.CharField()
    period = serializers.CharField(help_text="The calendar month (UTC), YYYY-MM.")
    requests = serializers.IntegerField(help_text="API requests counted this month.")
    requests_per_month = serializers.IntegerField(allow_null=True, help_text="The quota; null: unlimited.")
    users = serializers.IntegerField()
    max_users = serializers.IntegerField()
    storage_bytes = serializers.IntegerField(help_text="Size of the tenant's schema on disk.")
