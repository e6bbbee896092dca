"""The platform API (SPEC 5): the public host, platform staff only."""

from __future__ import annotations

from django_tenants.utils import schema_context
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors as account_selectors
from accounts.authentication import StaffSessionAuthentication, StaffTokenAuthentication
from accounts.services import provision_tenant_with_admin
from api.openapi import error
from api.pagination import ListPage
from api.permissions import IsPlatformStaff
from api.serializers import (
    ActivatedSerializer,
    EventSerializer,
    NodeListSerializer,
    SuspendedSerializer,
    TenantCreateSerializer,
    TenantDetailSerializer,
    TenantMoveSerializer,
    TenantSerializer,
    TenantUpdateSerializer,
)
from api.token_views import TokenExchangeViewSet
from api.validation import validated
from core.audit import Actor
from tenants import selectors, services
from tenants.errors import TenantNotFound
from tenants.models import StaffToken, Tenant

TENANT_STATE = PolymorphicProxySerializer(
    component_name="TenantState",
    serializers=[SuspendedSerializer, ActivatedSerializer],
    resource_type_field_name=None,
)


class PlatformViewSet(viewsets.GenericViewSet):
    authentication_classes = [StaffTokenAuthentication, StaffSessionAuthentication]
    permission_classes = [IsPlatformStaff]


class TenantViewSet(PlatformViewSet):
    lookup_url_kwarg = "tenant_id"
    lookup_value_regex = "[^/]+"
    pagination_class = ListPage.of("tenants")
    serializer_class = TenantSerializer

    def tenant(self) -> Tenant:
        tenant = selectors.get_tenant(self.kwargs["tenant_id"])
        if tenant is None:
            raise TenantNotFound()
        return tenant

    def paged_tenant_id(self) -> str:
        return self.kwargs["tenant_id"]

    def actor(self) -> Actor:
        return Actor.of(self.request.user)

    @extend_schema(operation_id="tenants_list")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.all_tenants())
        return self.get_paginated_response(TenantSerializer(page, many=True).data)

    @extend_schema(
        operation_id="tenants_create",
        request=TenantCreateSerializer,
        responses={
            201: TenantSerializer,
            400: error("Invalid or reserved id, unknown plan, invalid fields."),
            409: error("Tenant already exists."),
        },
    )
    def create(self, request: Request) -> Response:
        data = validated(TenantCreateSerializer, request)
        tenant = provision_tenant_with_admin(
            tenant_id=data["id"],
            name=data["name"],
            plan=data.get("plan", "starter"),
            admin=data.get("admin"),
            actor=self.actor(),
        )
        return Response(TenantSerializer(tenant).data, status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="tenants_get", responses=TenantDetailSerializer)
    def retrieve(self, request: Request, tenant_id: str) -> Response:
        return Response(TenantDetailSerializer(selectors.tenant_details(self.tenant())).data)

    @extend_schema(operation_id="tenants_update", request=TenantUpdateSerializer, responses=TenantDetailSerializer)
    def partial_update(self, request: Request, tenant_id: str) -> Response:
        tenant = services.update_tenant(tenant_id, validated(TenantUpdateSerializer, request), actor=self.actor())
        return Response(TenantDetailSerializer(selectors.tenant_details(tenant)).data)

    @extend_schema(operation_id="tenants_suspend", request=None, responses=TENANT_STATE)
    @action(detail=True, methods=["put"])
    def suspend(self, request: Request, tenant_id: str) -> Response:
        tenant = services.set_tenant_active(tenant_id, False, actor=self.actor())
        return Response(SuspendedSerializer(tenant).data)

    @extend_schema(operation_id="tenants_activate", request=None, responses=TENANT_STATE)
    @action(detail=True, methods=["put"])
    def activate(self, request: Request, tenant_id: str) -> Response:
        tenant = services.set_tenant_active(tenant_id, True, actor=self.actor())
        return Response(ActivatedSerializer(tenant).data)

    @extend_schema(
        operation_id="tenants_move",
        request=TenantMoveSerializer,
        responses={
            200: TenantDetailSerializer,
            400: error("Not a worker of the cluster, or an invalid body."),
            409: error("Already on that node, a move of the tenant is running, or not a Citus cluster."),
        },
    )
    @action(detail=True, methods=["post"])
    def move(self, request: Request, tenant_id: str) -> Response:
        """Move the tenant's schema to another Citus worker while it stays in use; answers once it has moved."""
        data = validated(TenantMoveSerializer, request)
        services.move_tenant(tenant_id, data["node"], actor=self.actor())
        return Response(TenantDetailSerializer(selectors.tenant_details(self.tenant())).data)

    @extend_schema(operation_id="tenants_events", responses=EventSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=ListPage.of("events", tenant=True))
    def events(self, request: Request, tenant_id: str) -> Response:
        """A tenant's audit trail: platform and tenant admin actions, newest first."""
        tenant = self.tenant()
        with schema_context(tenant.schema_name):
            page = self.paginate_queryset(account_selectors.audit_events())
            data = EventSerializer(page, many=True).data
        return self.get_paginated_response(data)


class NodeViewSet(PlatformViewSet):
    """The Citus cluster's workers (SPEC 9): one document, ``{"nodes": [...]}``."""

    singleton = True

    @extend_schema(
        operation_id="nodes_get",
        responses={200: NodeListSerializer, 409: error("Not a Citus cluster: a single PostgreSQL server.")},
    )
    def retrieve(self, request: Request) -> Response:
        return Response(NodeListSerializer({"nodes": selectors.nodes()}).data)


@extend_schema_view(
    create=extend_schema(
        operation_id="staff_token_create", responses={401: error("Bad username or password, or not staff.")}
    ),
    destroy=extend_schema(operation_id="staff_token_revoke"),
)
class StaffTokenViewSet(TokenExchangeViewSet):
    """Tokens of platform staff (public schema)."""

    authentication_classes = [StaffTokenAuthentication]
    holder_permission = IsPlatformStaff

    def can_hold_token(self, user: object) -> bool:
        return getattr(user, "is_staff", False)

    def issue(self, user: object) -> str:
        _, raw_key = StaffToken.issue(user=user, name="api")
        return raw_key
