"""The tenant-scoped API; every view runs in the tenant's schema (SPEC 4)."""

from __future__ import annotations

from django.db.models import Count
from django.db.models.functions import TruncDate
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.audit import Actor
from accounts.authentication import TenantSessionAuthentication, TenantTokenAuthentication
from accounts.models import AuthToken, TenantUser
from accounts.selectors import events_page, settings_document, user_by_raw_id, user_json
from accounts.token_views import TokenExchangeView
from api import openapi as doc
from api.errors import error_response
from api.permissions import IsTenantUser, ReadOrTenantAdmin, RequiresFeature, TenantAdminOnly, TenantRateThrottle
from api.serializers import SettingsUpdateSerializer, UserCreateSerializer, UserUpdateSerializer
from api.validation import CredentialsSerializer, pagination_params
from tenants.selectors import tenant_profile


class TenantView(APIView):
    authentication_classes = [TenantTokenAuthentication, TenantSessionAuthentication]
    permission_classes = [ReadOrTenantAdmin]
    throttle_classes = [TenantRateThrottle]

    def handle_exception(self, exc):
        if isinstance(exc, services.AccountError):
            detail = {exc.field: [str(exc)]} if exc.field else None
            return error_response(str(exc), exc.status, **({"detail": detail} if detail else {}))
        return super().handle_exception(exc)


class TenantProfileView(TenantView):
    @extend_schema(operation_id="tenant_profile", responses=doc.TenantProfileSerializer)
    def get(self, request):
        return Response({**tenant_profile(request.tenant), "settings": settings_document(request.tenant)})


class SettingsView(TenantView):
    @extend_schema(operation_id="settings_get", responses=doc.SettingsSerializer)
    def get(self, request):
        return Response({"tenant": request.tenant.id, "settings": settings_document(request.tenant)})

    @extend_schema(
        operation_id="settings_update",
        request=SettingsUpdateSerializer,
        responses={200: doc.SettingsUpdatedSerializer, 403: doc.error("Not a tenant admin, or a plan-governed key.")},
    )
    def put(self, request):
        serializer = SettingsUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workspace = services.update_workspace_settings(serializer.validated_data, actor=Actor.of(request.user))
        return Response({"updated": True, "settings": settings_document(request.tenant, workspace)})


class UserCollectionView(TenantView):
    @extend_schema(operation_id="users_list", parameters=doc.PAGINATION, responses=doc.UserListSerializer)
    def get(self, request):
        limit, offset = pagination_params(request)
        users = TenantUser.objects.order_by("id")
        page = [user_json(user) for user in users[offset : offset + limit]]
        total = users.count() if offset or len(page) == limit else len(page)
        return Response({"tenant": request.tenant.id, "users": page, "count": total})

    @extend_schema(
        operation_id="users_create",
        request=UserCreateSerializer,
        responses={
            201: doc.UserSerializer,
            403: doc.error("Not a tenant admin, or the plan's user limit is reached."),
            409: doc.error("Username taken."),
        },
    )
    def post(self, request):
        serializer = UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.create_user(request.tenant, actor=Actor.of(request.user), **serializer.validated_data)
        return Response(user_json(user), status=status.HTTP_201_CREATED)


class UserDetailView(TenantView):
    @extend_schema(operation_id="users_get", responses=doc.UserSerializer)
    def get(self, request, user_id: str):
        return Response(user_json(user_by_raw_id(user_id)))

    @extend_schema(
        operation_id="users_update",
        request=UserUpdateSerializer,
        responses={200: doc.UserSerializer, 409: doc.error("Would leave no admin.")},
    )
    def patch(self, request, user_id: str):
        user = user_by_raw_id(user_id)
        serializer = UserUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        updated = services.update_user(user.pk, serializer.validated_data, actor=Actor.of(request.user))
        return Response(user_json(updated))

    @extend_schema(
        operation_id="users_delete",
        responses={204: None, 409: doc.error("Would leave no admin.")},
    )
    def delete(self, request, user_id: str):
        services.delete_user(user_by_raw_id(user_id).pk, actor=Actor.of(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    post=extend_schema(
        operation_id="tenant_token_create",
        request=CredentialsSerializer,
        responses={200: doc.TokenSerializer, 401: doc.error("Bad username or password.")},
    ),
    delete=extend_schema(operation_id="tenant_token_revoke", request=None, responses={204: None}),
)
class TokenView(TokenExchangeView):
    """Tokens of this tenant's users; they live in its schema and are valid nowhere else."""

    authentication_classes = [TenantTokenAuthentication]
    token_model = AuthToken
    holder_permission = IsTenantUser

    def can_hold_token(self, user: object) -> bool:
        return isinstance(user, TenantUser)


class ExportView(TenantView):
    """Everything about the tenant in one document (feature ``export``, admins only)."""

    required_feature = "export"
    permission_classes = [RequiresFeature, TenantAdminOnly]

    @extend_schema(
        operation_id="tenant_export",
        responses={
            200: doc.ExportSerializer,
            403: doc.error("Feature 'export' not on the plan, or not a tenant admin."),
        },
    )
    def get(self, request):
        return Response(
            {
                **tenant_profile(request.tenant),
                "settings": settings_document(request.tenant),
                "users": [user_json(user) for user in TenantUser.objects.order_by("id")],
            }
        )


class AnalyticsView(TenantView):
    """Users per role and users created per day (feature ``analytics``)."""

    required_feature = "analytics"
    permission_classes = [RequiresFeature, ReadOrTenantAdmin]

    @extend_schema(
        operation_id="tenant_analytics",
        responses={
            200: doc.AnalyticsSerializer,
            403: doc.error("Feature 'analytics' not on the plan."),
        },
    )
    def get(self, request):
        by_role = dict(TenantUser.objects.values_list("role").annotate(n=Count("id")).order_by("role"))
        per_day = (
            TenantUser.objects.annotate(day=TruncDate("created_at"))
            .values("day")
            .annotate(count=Count("id"))
            .order_by("day")
        )
        return Response(
            {
                "tenant": request.tenant.id,
                "users_by_role": {role: by_role.get(role, 0) for role in ("admin", "member")},
                "users_created_per_day": [{"date": row["day"].isoformat(), "count": row["count"]} for row in per_day],
                "total_users": sum(by_role.values()),
            }
        )


class EventsView(TenantView):
    """The tenant's audit trail, newest first (tenant admins)."""

    permission_classes = [TenantAdminOnly]

    @extend_schema(operation_id="tenant_events", parameters=doc.PAGINATION, responses=doc.EventListSerializer)
    def get(self, request):
        limit, offset = pagination_params(request)
        events, total = events_page(limit, offset)
        return Response({"tenant": request.tenant.id, "events": events, "count": total})
