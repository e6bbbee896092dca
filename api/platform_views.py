"""The platform API (SPEC 5): the public host, platform staff only."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse
from django_tenants.utils import schema_context
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors as account_selectors
from accounts.authentication import StaffSessionAuthentication, StaffTokenAuthentication
from accounts.services import provision_tenant_with_admin
from api.jobs import (
    STAFF_DOWNLOAD,
    FileNegotiation,
    accepted,
    download,
    download_responses,
    job_data,
    jobs_data,
    uploaded_file_path,
)
from api.openapi import error
from api.pagination import ListPage
from api.permissions import IsPlatformStaff
from api.serializers import (
    ActivatedSerializer,
    EventSerializer,
    JobSerializer,
    NodeListSerializer,
    SuspendedSerializer,
    TenantCreateSerializer,
    TenantDeletedSerializer,
    TenantDetailSerializer,
    TenantImportSerializer,
    TenantMoveSerializer,
    TenantSerializer,
    TenantUpdateSerializer,
    UsageSerializer,
)
from api.token_views import TokenExchangeViewSet
from api.validation import validated
from core.audit import Actor
from core.errors import ServiceError
from core.jobs import selectors as job_selectors
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

    def get_object(self) -> Tenant:
        # DRF's OPTIONS metadata asks for the object of PUT routes (suspend, activate).
        return self.tenant()

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

    @extend_schema(
        operation_id="tenants_delete",
        responses={202: TenantDeletedSerializer},
        description="Take the tenant out of service at once; its data is kept until purge_after, "
        "when it can no longer be restored. Its id stays taken until then.",
    )
    def destroy(self, request: Request, tenant_id: str) -> Response:
        tenant = services.delete_tenant(tenant_id, actor=self.actor())
        return Response(TenantDeletedSerializer(tenant).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="tenants_restore",
        request=None,
        responses={
            200: TenantDetailSerializer,
            409: error("The tenant is not deleted, or its grace period is over."),
        },
    )
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, tenant_id: str) -> Response:
        tenant = services.restore_tenant(tenant_id, actor=self.actor())
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

    @extend_schema(operation_id="tenants_usage", responses=UsageSerializer)
    @action(detail=True, methods=["get"])
    def usage(self, request: Request, tenant_id: str) -> Response:
        """The tenant's requests this month against its quota, users against its limit, storage."""
        return Response(UsageSerializer(selectors.usage(self.tenant())).data)

    @extend_schema(operation_id="tenant_exports_list", responses=JobSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=ListPage.of("exports", tenant=True))
    def exports(self, request: Request, tenant_id: str) -> Response:
        """The tenant's full exports, newest first; a done one's result has its download URL."""
        tenant = self.tenant()
        page = self.paginate_queryset(job_selectors.jobs_of(tenant.id, (services.TENANT_EXPORT,)))
        return self.get_paginated_response(jobs_data(page, request, STAFF_DOWNLOAD))

    @extend_schema(
        operation_id="tenant_exports_create",
        request=None,
        responses={202: JobSerializer},
        description="Queue a full-fidelity archive of the tenant (every table of its schema, its registry row, "
        "plan and domains, with a manifest); follow the job at /admin/jobs/{id}.",
    )
    @exports.mapping.post
    def create_export(self, request: Request, tenant_id: str) -> Response:
        return accepted(services.request_export(tenant_id, actor=self.actor()), request, STAFF_DOWNLOAD)

    @extend_schema(
        operation_id="tenants_import",
        request={"multipart/form-data": TenantImportSerializer},
        responses={
            202: JobSerializer,
            400: error("Not a valid tenant archive (corrupt, truncated, tampered, foreign), or an invalid id."),
            409: error("A tenant with that id exists."),
            413: error("The archive is larger than the limit."),
        },
        description="Queue the creation of a tenant from an archive of a full export (of this server or another).",
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    def import_archive(self, request: Request) -> Response:
        data = validated(TenantImportSerializer, request)
        upload = data["archive"]
        limit = settings.TENANT_ARCHIVE_MAX_BYTES
        if upload.size > limit:
            raise ServiceError(f"Archive too large (limit {limit} bytes)", "archive", status=413)
        with uploaded_file_path(upload) as path:
            job = services.request_import(path, tenant_id=data.get("id"), name=data.get("name"), actor=self.actor())
        return accepted(job, request, STAFF_DOWNLOAD)

    @extend_schema(
        operation_id="tenants_move",
        request=TenantMoveSerializer,
        responses={
            202: JobSerializer,
            400: error("Not a worker of the cluster, or an invalid body."),
            409: error("Already on that node, a move of the tenant is queued or running, or not a Citus cluster."),
        },
    )
    @action(detail=True, methods=["post"])
    def move(self, request: Request, tenant_id: str) -> Response:
        """Queue a move of the tenant's schema to another Citus worker; the tenant stays in use while it moves.

        The job's result names both nodes: ``{"from": "<host>:<port>", "to": "<host>:<port>"}``.
        """
        data = validated(TenantMoveSerializer, request)
        return accepted(services.request_move(tenant_id, data["node"], actor=self.actor()), request, STAFF_DOWNLOAD)

    @extend_schema(operation_id="tenants_events", responses=EventSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=ListPage.of("events", tenant=True))
    def events(self, request: Request, tenant_id: str) -> Response:
        """A tenant's audit trail: platform and tenant admin actions, newest first."""
        tenant = self.tenant()
        with schema_context(tenant.schema_name):
            page = self.paginate_queryset(account_selectors.audit_events())
            data = EventSerializer(page, many=True).data
        return self.get_paginated_response(data)


class JobViewSet(PlatformViewSet):
    """Every background job, for staff: its state, and the file a done export made."""

    lookup_url_kwarg = "job_id"
    lookup_value_regex = "[^/]+"

    @extend_schema(operation_id="jobs_get", responses=JobSerializer)
    def retrieve(self, request: Request, job_id: str) -> Response:
        return Response(job_data(job_selectors.get_job(job_id), request, STAFF_DOWNLOAD))

    @extend_schema(
        operation_id="jobs_download",
        responses=download_responses("application/gzip", "The file the job made (a tenant archive, or a zip)."),
    )
    @action(detail=True, methods=["get"], content_negotiation_class=FileNegotiation)
    def download(self, request: Request, job_id: str) -> FileResponse:
        job = job_selectors.get_job(job_id)
        return download(job, "application/zip" if job.artifact.endswith(".zip") else "application/gzip")


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
