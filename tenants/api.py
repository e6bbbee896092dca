"""The platform API (public schema, platform staff only)."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import StaffSessionAuthentication, StaffTokenAuthentication
from accounts.models import USERNAME_VALIDATOR
from accounts.services import AccountError
from api.errors import error_response
from api.validation import (
    CredentialsSerializer,
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
                tenant_id=data["id"], name=data["name"], plan=data.get("plan", "starter"), admin=data.get("admin")
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
            tenant = services.update_tenant(tenant_id, serializer.validated_data)
        except services.TenantNotFound as exc:
            return error_response(str(exc), status.HTTP_404_NOT_FOUND)
        except services.UnknownPlan as exc:
            return error_response(str(exc), status.HTTP_400_BAD_REQUEST, detail={"plan": [str(exc)]})
        return Response(selectors.tenant_detail(tenant))


class TenantSuspendView(PlatformView):
    def put(self, request, tenant_id: str):
        try:
            tenant = services.suspend_tenant(tenant_id)
        except services.TenantNotFound as exc:
            return error_response(str(exc), status.HTTP_404_NOT_FOUND)
        return Response({"suspended": True, "tenant": tenant.id})


class TenantActivateView(PlatformView):
    def put(self, request, tenant_id: str):
        try:
            tenant = services.activate_tenant(tenant_id)
        except services.TenantNotFound as exc:
            return error_response(str(exc), status.HTTP_404_NOT_FOUND)
        return Response({"activated": True, "tenant": tenant.id})


class StaffTokenView(APIView):
    """POST: exchange a staff username and password for a token. DELETE: revoke the token in use."""

    authentication_classes = [StaffTokenAuthentication]

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else [IsPlatformStaff()]

    def post(self, request):
        serializer = CredentialsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request._request, **serializer.validated_data)
        if user is None or not user.is_staff:
            raise exceptions.AuthenticationFailed("Invalid username or password")
        _, raw_key = StaffToken.issue(user=user, name="api")
        return Response({"token": raw_key})

    def delete(self, request):
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
