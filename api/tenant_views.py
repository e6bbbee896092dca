"""The tenant API (SPEC 4): every view runs in the tenant's schema, on its host or with X-Tenant-ID."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.http import FileResponse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, service_tokens, services
from accounts.access import api_key
from accounts.authentication import (
    ApiKeyAuthentication,
    JwtAuthentication,
    TenantSessionAuthentication,
    TenantTokenAuthentication,
)
from accounts.inputs import ApiKeyCreateSerializer, SettingsUpdateSerializer, UserCreateSerializer, UserUpdateSerializer
from accounts.models import TenantUser
from accounts.services import WORKSPACE_EXPORT
from api.jobs import TENANT_DOWNLOAD, FileNegotiation, accepted, download, download_responses, job_data, jobs_data
from api.openapi import error
from api.pagination import ListPage
from api.permissions import (
    IsTenantUser,
    ReadOrTenantAdmin,
    RequiresFeature,
    TenantAdminInPerson,
    TenantAdminOnly,
    TenantRateThrottle,
)
from api.serializers import (
    AnalyticsSerializer,
    ApiKeyCreatedSerializer,
    ApiKeySerializer,
    ExportSerializer,
    JobSerializer,
    JwtRequestSerializer,
    RefreshRequestSerializer,
    SettingsSerializer,
    SettingsUpdatedSerializer,
    TenantEventSerializer,
    TenantProfileSerializer,
    TokenPairSerializer,
    UsageSerializer,
    UserSerializer,
)
from api.token_views import TokenExchangeViewSet
from api.validation import validated
from core.audit import Actor
from core.jobs import selectors as job_selectors
from core.jobs.models import Job
from tenants import selectors as tenant_selectors


class TenantViewSet(viewsets.GenericViewSet):
    authentication_classes = [
        TenantTokenAuthentication,
        ApiKeyAuthentication,
        JwtAuthentication,
        TenantSessionAuthentication,
    ]
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
    serializer_class = SettingsUpdateSerializer  # the browsable API's form for PUT

    def get_object(self) -> object:
        # DRF's OPTIONS metadata and the browsable API ask for the object of a PUT route.
        return selectors.get_workspace_settings()

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
    throttle_classes = [TenantRateThrottle]  # revoking counts against the plan; signing in does not

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


class WorkspaceExportViewSet(TenantViewSet):
    """The workspace's own data for its admins, as readable JSON documents in a zip (feature ``export``).

    Exports run in the background: POST queues one (202 with the job), GET follows it, and a done
    one's ``result.download`` serves the zip. Only this workspace's exports are listed or served.
    """

    lookup_url_kwarg = "job_id"
    pagination_class = ListPage.of("exports", tenant=True)
    serializer_class = JobSerializer
    required_feature = "export"

    def get_permissions(self) -> list:
        return [RequiresFeature(), TenantAdminOnly()]

    def job(self, job_id: str) -> Job:
        return job_selectors.get_job(job_id, tenant_id=self.request.tenant.id, kinds=(WORKSPACE_EXPORT,))

    @extend_schema(operation_id="workspace_exports_list")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(job_selectors.jobs_of(request.tenant.id, (WORKSPACE_EXPORT,)))
        return self.get_paginated_response(jobs_data(page, request, TENANT_DOWNLOAD))

    @extend_schema(operation_id="workspace_exports_create", request=None, responses={202: JobSerializer})
    def create(self, request: Request) -> Response:
        job = services.request_workspace_export(request.tenant, actor=self.actor())
        return accepted(job, request, TENANT_DOWNLOAD)

    @extend_schema(operation_id="workspace_exports_get")
    def retrieve(self, request: Request, job_id: str) -> Response:
        return Response(job_data(self.job(job_id), request, TENANT_DOWNLOAD))

    @extend_schema(
        operation_id="workspace_exports_download",
        responses=download_responses("application/zip", "The export: workspace.json, users.json, audit-events.json."),
    )
    @action(detail=True, methods=["get"], content_negotiation_class=FileNegotiation)
    def download(self, request: Request, job_id: str) -> FileResponse:
        return download(self.job(job_id), "application/zip")


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
    serializer_class = TenantEventSerializer

    @extend_schema(operation_id="tenant_events")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.audit_events())
        return self.get_paginated_response(TenantEventSerializer(page, many=True).data)


class UsageViewSet(TenantViewSet):
    """This month's requests against the quota, users against the limit, storage (tenant admins)."""

    singleton = True
    permission_classes = [TenantAdminOnly]

    @extend_schema(operation_id="tenant_usage", responses=UsageSerializer)
    def retrieve(self, request: Request) -> Response:
        return Response(UsageSerializer(tenant_selectors.usage(request.tenant)).data)


class ApiKeyViewSet(TenantViewSet):
    """The tenant's API keys: created, listed and revoked by tenant admins in person, never by a key."""

    permission_classes = [TenantAdminInPerson]
    lookup_url_kwarg = "key_id"
    pagination_class = ListPage.of("keys", tenant=True)
    serializer_class = ApiKeySerializer

    @extend_schema(operation_id="keys_list")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.api_keys())
        return self.get_paginated_response(ApiKeySerializer(page, many=True).data)

    @extend_schema(
        operation_id="keys_create",
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer, 403: error("Not a tenant admin, or an API key.")},
    )
    def create(self, request: Request) -> Response:
        key, raw_key = services.create_api_key(
            request.tenant, actor=self.actor(), **validated(ApiKeyCreateSerializer, request)
        )
        key.raw_key = raw_key
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="keys_revoke", responses={204: None})
    def destroy(self, request: Request, key_id: str) -> Response:
        services.revoke_api_key(selectors.api_key_by_raw_id(key_id).pk, actor=self.actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


class SignInViewSet(viewsets.ViewSet):
    """A sign-in route: anyone may try. Passwords are throttled where they are checked
    (``accounts.throttling``); signing in never spends the tenant's plan limit (anyone could)."""

    singleton = True
    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Read by the OpenAPI description: POST may answer the sign-in throttle's 429.
    signs_in = True


class JwtViewSet(SignInViewSet):
    """A JWT pair for a username and password, or for the API key in the request's header."""

    authentication_classes = [ApiKeyAuthentication]

    @extend_schema(
        operation_id="jwt_create",
        request=JwtRequestSerializer,
        responses={200: TokenPairSerializer, 401: error("Bad username or password, or a bad API key.")},
    )
    def create(self, request: Request) -> Response:
        data = validated(JwtRequestSerializer, request)
        key = api_key(request.user)
        if key is not None:
            if data:
                raise serializers.ValidationError("Give a username and password, or an API key, not both.")
            return Response(TokenPairSerializer(service_tokens.issue_for_key(request.tenant, key)).data)
        if set(data) != {"username", "password"}:
            raise serializers.ValidationError("Give a username and password, or an API key.")
        user = authenticate(request._request, **data)
        if not isinstance(user, TenantUser):
            raise exceptions.AuthenticationFailed("Invalid username or password")
        return Response(TokenPairSerializer(service_tokens.issue_for_user(request.tenant, user)).data)


class JwtRefreshViewSet(SignInViewSet):
    """The next JWT pair for a refresh token, which is retired."""

    @extend_schema(
        operation_id="jwt_refresh",
        request=RefreshRequestSerializer,
        responses={200: TokenPairSerializer, 401: error("Unknown, expired or already used refresh token.")},
    )
    def create(self, request: Request) -> Response:
        raw_refresh = validated(RefreshRequestSerializer, request)["refresh"]
        return Response(TokenPairSerializer(service_tokens.refresh(request.tenant, raw_refresh)).data)
