"""The platform API (public schema, platform staff only)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django_tenants.utils import schema_context
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit import Actor
from accounts.authentication import StaffSessionAuthentication, StaffTokenAuthentication
from accounts.models import USERNAME_VALIDATOR
from accounts.selectors import events_page
from accounts.services import AccountError
from accounts.token_views import TokenExchangeView
from api.errors import error_response
from api.validation import (
    StrictCharField,
    StrictIntegerField,
    StrictSerializer,
    pagination_params,
)
from tenants import selectors, services
from tenants.models import StaffToken, Tenant
from tenants.permissions import IsPlatformStaff


class PlatformView(APIView):
    authentication_classes = [StaffTokenAuthentication, StaffSessionAuthentication]
    permission_classes = [IsPlatformStaff]


class FirstAdminSerializer(StrictSerializer):
    username = StrictCharField(max_length=150, validators=[USERNAME_VALIDATOR])
    name = StrictCharField(max_length=200)
    password = StrictCharField(max_length=1024, trim_whitespace=False, write_only=True)
    email = serializers.EmailField(required=False, default="", max_length=254)


class TenantCreateSerializer(StrictSerializer):
    id = StrictCharField(trim_whitespace=False)
    name = StrictCharField(max_length=200)
    plan = StrictCharField(required=False, max_length=32)
    admin = FirstAdminSerializer(required=False)


class FeatureListField(serializers.ListField):
    child = StrictCharField(max_length=50)

    def __init__(self, **kwargs) -> None:
        super().__init__(allow_empty=True, max_length=50, **kwargs)


class TenantUpdateSerializer(StrictSerializer):
    """The platform's changes to a tenant; limits given as null follow the plan again."""

    name = StrictCharField(required=False, max_length=200)
    plan = StrictCharField(required=False, max_length=32)
    max_users = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=1_000_000)
    features = FeatureListField(required=False, allow_null=True)
    rate_limit_per_minute = StrictIntegerField(required=False, allow_null=True, min_value=0, max_value=10_000_000)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Nothing to change.")
        return attrs


class TenantCollectionView(PlatformView):
    def get(self, request):
        limit, offset = pagination_params(request)
        tenants = Tenant.objects.select_related("plan").order_by("created_at", "id")
        page = [selectors.tenant_profile(tenant) for tenant in tenants[offset : offset + limit]]
        total = tenants.count() if offset or len(page) == limit else len(page)
        return Response({"tenants": page, "count": total})

    def post(self, request):
        serializer = TenantCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            tenant = services.provision_tenant(
                tenant_id=data["id"],
                name=data["name"],
                plan=data.get("plan", "starter"),
                admin=data.get("admin"),
                actor=Actor.of(request.user),
            )
        except DjangoValidationError as exc:
            return error_response(exc.messages[0], status.HTTP_400_BAD_REQUEST, detail={"id": exc.messages})
        except AccountError as exc:
            return error_response(f"Invalid admin: {exc}", exc.status, detail={"admin": {exc.field: [str(exc)]}})
        except services.UnknownPlan as exc:
            return error_response(str(exc), status.HTTP_400_BAD_REQUEST, detail={"plan": [str(exc)]})
        except services.TenantAlreadyExists as exc:
            return error_response(str(exc), status.HTTP_409_CONFLICT)
        return Response(selectors.tenant_profile(tenant), status=status.HTTP_201_CREATED)


class TenantDetailView(PlatformView):
    def get(self, request, tenant_id: str):
        tenant = selectors.get_tenant(tenant_id)
        if tenant is None:
            return error_response("Tenant not found", status.HTTP_404_NOT_FOUND)
        return Response(selectors.tenant_detail(tenant))

    def patch(self, request, tenant_id: str):
        serializer = TenantUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            tenant = services.update_tenant(tenant_id, serializer.validated_data, actor=Actor.of(request.user))
        except services.TenantNotFound as exc:
            return error_response(str(exc), status.HTTP_404_NOT_FOUND)
        except services.UnknownPlan as exc:
            return error_response(str(exc), status.HTTP_400_BAD_REQUEST, detail={"plan": [str(exc)]})
        return Response(selectors.tenant_detail(tenant))


class TenantEventsView(PlatformView):
    """A tenant's audit trail: platform and tenant admin actions, newest first."""

    def get(self, request, tenant_id: str):
        tenant = selectors.get_tenant(tenant_id)
        if tenant is None:
            return error_response("Tenant not found", status.HTTP_404_NOT_FOUND)
        limit, offset = pagination_params(request)
        with schema_context(tenant.schema_name):
            events, total = events_page(limit, offset)
        return Response({"tenant": tenant.id, "events": events, "count": total})


class TenantStateView(PlatformView):
    """PUT suspends or reactivates (``active``), answering in the seed's shape."""

    active = False

    def put(self, request, tenant_id: str):
        try:
            tenant = services.set_tenant_active(tenant_id, self.active, actor=Actor.of(request.user))
        except services.TenantNotFound as exc:
            return error_response(str(exc), status.HTTP_404_NOT_FOUND)
        return Response({"activated" if self.active else "suspended": True, "tenant": tenant.id})


class StaffTokenView(TokenExchangeView):
    """Tokens of platform staff (public schema)."""

    authentication_classes = [StaffTokenAuthentication]
    token_model = StaffToken
    holder_permission = IsPlatformStaff

    def can_hold_token(self, user: object) -> bool:
        return getattr(user, "is_staff", False)
