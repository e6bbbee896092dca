"""The tenant API (SPEC 4): every view runs in the tenant's schema, on its host or with X-Tenant-ID."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.authentication import TenantSessionAuthentication, TenantTokenAuthentication
from accounts.inputs import SettingsUpdateSerializer, UserCreateSerializer, UserUpdateSerializer
from accounts.models import TenantUser
from api.openapi import error
from api.pagination import ListPage
from api.permissions import IsTenantUser, ReadOrTenantAdmin, RequiresFeature, TenantAdminOnly, TenantRateThrottle
from api.serializers import (
    AnalyticsSerializer,
    EventSerializer,
    ExportSerializer,
    SettingsSerializer,
    SettingsUpdatedSerializer,
    TenantProfileSerializer,
    UserSerializer,
)
from api.token_views import TokenExchangeViewSet
from api.validation import validated
from core.audit import Actor


class TenantViewSet(viewsets.GenericViewSet):
    authentication_classes = [TenantTokenAuthentication, TenantSessionAuthentication]
    permission_classes = [ReadOrTenantAdmin]
    throttle_classes = [TenantRateThrottle]
    lookup_value_regex = "[^/]+"

    def paged_tenant_id(self) -> str:
        return self.request.tenant.id

    def actor(self) -> Actor:
        return Actor.of(self.request.user)


class ProfileViewSet(TenantViewSet):
    singleton = True

    @extend_schema(operation_id="tenant_profile", responses=TenantProfileSerializer)
    def retrieve(self, request: Request) -> Response:
        tenant = request.tenant
        tenant.current_settings = selectors.tenant_settings(tenant)
        return Response(TenantProfileSerializer(tenant).data)


class SettingsViewSet(TenantViewSet):
    singleton = True

    @extend_schema(operation_id="settings_get", responses=SettingsSerializer)
    def retrieve(self, request: Request) -> Response:
        return Response(SettingsSerializer(selectors.tenant_settings(request.tenant)).data)

    @extend_schema(
        operation_id="settings_update",
        request=SettingsUpdateSerializer,
        responses={200: SettingsUpdatedSerializer, 403: error("Not a tenant admin, or a plan-governed key.")},
    )
    def update(self, request: Request) -> Response:
        workspace = services.update_workspace_settings(validated(SettingsUpdateSerializer, request), actor=self.actor())
        return Response(SettingsUpdatedSerializer(selectors.tenant_settings(request.tenant, workspace)).data)


class UserViewSet(TenantViewSet):
    lookup_url_kwarg = "user_id"
    pagination_class = ListPage.of("users", tenant=True)
    serializer_class = UserSerializer

    @extend_schema(operation_id="users_list")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.users())
        return self.get_paginated_response(UserSerializer(page, many=True).data)

    @extend_schema(
        operation_id="users_create",
        request=UserCreateSerializer,
        responses={
            201: UserSerializer,
            403: error("Not a tenant admin, or the plan's user limit is reached."),
            409: error("Username taken."),
        },
    )
    def create(self, request: Request) -> Response:
        user = services.create_user(request.tenant, actor=self.actor(), **validated(UserCreateSerializer, request))
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="users_get")
    def retrieve(self, request: Request, user_id: str) -> Response:
        return Response(UserSerializer(selectors.user_by_raw_id(user_id)).data)

    @extend_schema(
        operation_id="users_update",
        request=UserUpdateSerializer,
        responses={200: UserSerializer, 409: error("Would leave no admin.")},
    )
    def partial_update(self, request: Request, user_id: str) -> Response:
        user = selectors.user_by_raw_id(user_id)
        updated = services.update_user(user.pk, validated(UserUpdateSerializer, request), actor=self.actor())
        return Response(UserSerializer(updated).data)

    @extend_schema(operation_id="users_delete", responses={204: None, 409: error("Would leave no admin.")})
    def destroy(self, request: Request, user_id: str) -> Response:
        services.delete_user(selectors.user_by_raw_id(user_id).pk, actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    create=extend_schema(operation_id="tenant_token_create", responses={401: error("Bad username or password.")}),
    destroy=extend_schema(operation_id="tenant_token_revoke"),
)
class TokenViewSet(TokenExchangeViewSet):
    """Tokens of this tenant's users; they live in its schema and are valid nowhere else."""

    authentication_classes = [TenantTokenAuthentication]
    holder_permission = IsTenantUser

    def can_hold_token(self, user: object) -> bool:
        return isinstance(user, TenantUser)

    def issue(self, user: TenantUser) -> str:
        return services.issue_token(user)


class FeatureViewSet(TenantViewSet):
    """A singleton behind a plan feature: ``required_feature`` is checked first, then ``role``."""

    singleton = True
    required_feature: str
    role = ReadOrTenantAdmin

    def get_permissions(self) -> list:
        return [RequiresFeature(), self.role()]


class ExportViewSet(FeatureViewSet):
    """Everything about the tenant in one document (feature ``export``, admins only)."""

    required_feature = "export"
    role = TenantAdminOnly

    @extend_schema(
        operation_id="tenant_export",
        responses={200: ExportSerializer, 403: error("Feature 'export' not on the plan, or not a tenant admin.")},
    )
    def retrieve(self, request: Request) -> Response:
        tenant = request.tenant
        tenant.current_settings = selectors.tenant_settings(tenant)
        tenant.all_users = selectors.users()
        return Response(ExportSerializer(tenant).data)


class AnalyticsViewSet(FeatureViewSet):
    """Users per role and users created per day (feature ``analytics``)."""

    required_feature = "analytics"

    @extend_schema(
        operation_id="tenant_analytics",
        responses={200: AnalyticsSerializer, 403: error("Feature 'analytics' not on the plan.")},
    )
    def retrieve(self, request: Request) -> Response:
        return Response(AnalyticsSerializer(selectors.user_analytics(request.tenant)).data)


class EventViewSet(TenantViewSet):
    """The tenant's audit trail, newest first (tenant admins)."""

    permission_classes = [TenantAdminOnly]
    pagination_class = ListPage.of("events", tenant=True)
    serializer_class = EventSerializer

    @extend_schema(operation_id="tenant_events")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.audit_events())
        return self.get_paginated_response(EventSerializer(page, many=True).data)
