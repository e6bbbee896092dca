"""The tenant-scoped API; every view runs in the tenant's schema (SPEC 4)."""

from __future__ import annotations

from django.db.models import Count
from django.db.models.functions import TruncDate
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.audit import Actor
from accounts.authentication import TenantSessionAuthentication, TenantTokenAuthentication
from accounts.models import AuthToken, TenantUser
from accounts.selectors import events_page, settings_document, user_json
from accounts.token_views import TokenExchangeView
from api.errors import error_response
from api.permissions import IsTenantUser, ReadOrTenantAdmin, RequiresFeature, TenantAdminOnly, TenantRateThrottle
from api.serializers import SettingsUpdateSerializer, UserCreateSerializer, UserUpdateSerializer
from api.validation import pagination_params
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


def _user_or_404(user_id: str) -> TenantUser:
    user = TenantUser.objects.filter(pk=int(user_id)).first() if user_id.isdigit() and len(user_id) < 19 else None
    if user is None:
        raise services.UserNotFound("User not found")
    return user


class TenantProfileView(TenantView):
    def get(self, request):
        return Response({**tenant_profile(request.tenant), "settings": settings_document(request.tenant)})


class SettingsView(TenantView):
    def get(self, request):
        return Response({"tenant": request.tenant.id, "settings": settings_document(request.tenant)})

    def put(self, request):
        serializer = SettingsUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        workspace = services.update_workspace_settings(serializer.validated_data, actor=Actor.of(request.user))
        return Response({"updated": True, "settings": settings_document(request.tenant, workspace)})


class UserCollectionView(TenantView):
    def get(self, request):
        limit, offset = pagination_params(request)
        users = TenantUser.objects.order_by("id")
        page = [user_json(user) for user in users[offset : offset + limit]]
        total = users.count() if offset or len(page) == limit else len(page)
        return Response({"tenant": request.tenant.id, "users": page, "count": total})

    def post(self, request):
        serializer = UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.create_user(request.tenant, actor=Actor.of(request.user), **serializer.validated_data)
        return Response(user_json(user), status=status.HTTP_201_CREATED)


class UserDetailView(TenantView):
    def get(self, request, user_id: str):
        return Response(user_json(_user_or_404(user_id)))

    def patch(self, request, user_id: str):
        user = _user_or_404(user_id)
        serializer = UserUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        updated = services.update_user(user.pk, serializer.validated_data, actor=Actor.of(request.user))
        return Response(user_json(updated))

    def delete(self, request, user_id: str):
        services.delete_user(_user_or_404(user_id).pk, actor=Actor.of(request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


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

    def get(self, request):
        limit, offset = pagination_params(request)
        events, total = events_page(limit, offset)
        return Response({"tenant": request.tenant.id, "events": events, "count": total})
