"""The OpenAPI description of both APIs (drf-spectacular), served at /api/schema/ and /api/docs/.

One document covers the platform routes (public URL conf) and the tenant routes (tenant
URL conf): the generator walks both. The shapes come from the serializers the views
render with (``api.serializers``); this module adds what every operation shares.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.permissions import AllowAny

from api.serializers import ErrorSerializer
from tenants.middleware import needs_tenant


def error(description: str) -> OpenApiResponse:
    """An error response of an operation, with why it happens there."""
    return OpenApiResponse(ErrorSerializer, description=description)


# --- Security schemes ----------------------------------------------------------------------


def _scheme(target_class: str, name: str, cookie: bool, description: str) -> type[OpenApiAuthenticationExtension]:
    """A security scheme of the schema, for one of the project's authentication classes."""
    where = (
        {"in": "cookie", "name": settings.SESSION_COOKIE_NAME} if cookie else {"in": "header", "name": "Authorization"}
    )
    definition = {"type": "apiKey", **where, "description": description}
    return type(
        f"{name}Scheme",
        (OpenApiAuthenticationExtension,),
        {"target_class": target_class, "name": name, "get_security_definition": lambda self, auto_schema: definition},
    )


SECURITY_SCHEMES = [
    _scheme(
        "accounts.authentication.StaffTokenAuthentication",
        "staffToken",
        cookie=False,
        description='"Token <key>", the key from POST /admin/auth/token.',
    ),
    _scheme(
        "accounts.authentication.TenantTokenAuthentication",
        "tenantToken",
        cookie=False,
        description='"Token <key>", the key from POST /api/auth/token (valid only in the tenant that issued it).',
    ),
    _scheme(
        "accounts.authentication.StaffSessionAuthentication",
        "staffSession",
        cookie=True,
        description="Session of the Django admin (/django-admin/login/); writes also need the CSRF token.",
    ),
    _scheme(
        "accounts.authentication.TenantSessionAuthentication",
        "tenantSession",
        cookie=True,
        description="Session from the tenant host's sign-in page; writes also need the CSRF token.",
    ),
]


# --- Operations ----------------------------------------------------------------------------

ERROR_WHY = {
    400: "Invalid JSON or fields; on tenant routes also a missing or mismatched X-Tenant-ID header.",
    401: "No credentials, or bad ones.",
    403: "Not allowed; on tenant routes also a suspended tenant.",
    404: "Not found; on tenant routes also an unknown tenant.",
    409: "Conflict with the current state.",
    413: "Request body over the size limit.",
    415: "Body not application/json.",
    429: "Too many requests: the tenant's plan rate limit, or the login throttle (see Retry-After).",
    503: "The database is out of reach for the moment (see Retry-After).",
}
BODY_METHODS = ("POST", "PUT", "PATCH")


class ProjectAutoSchema(AutoSchema):
    """Adds what every operation shares: the tenant header, the tag and the JSON error responses."""

    def _is_tenant_route(self) -> bool:
        return needs_tenant(self.path)

    def get_tags(self) -> list[str]:
        return ["tenant"] if self._is_tenant_route() else ["platform"]

    def get_override_parameters(self) -> list:
        parameters = list(super().get_override_parameters())
        if self._is_tenant_route():
            parameters.append(
                OpenApiParameter(
                    "X-Tenant-ID",
                    str,
                    OpenApiParameter.HEADER,
                    description="The tenant, on the public host. Not needed on <tenant>.<base domain>.",
                )
            )
        return parameters

    def _error_codes(self) -> set[int]:
        codes: set[int] = {503}
        allows_anyone = any(isinstance(permission, AllowAny) for permission in self.view.get_permissions())
        if not allows_anyone:
            codes |= {401, 403}
        if self._is_tenant_route():
            codes |= {400, 403, 404}
        if self.view.get_throttles():
            codes.add(429)
        if self.method in BODY_METHODS:
            codes.add(413)
            # Only a body that is read can be bad JSON, invalid, or of the wrong type.
            if self.get_request_serializer() is not None:
                codes |= {400, 415}
        if "{" in self.path:
            codes.add(404)
        if self._is_paged():
            codes.add(400)  # a limit or offset out of range
        return codes

    def _is_paged(self) -> bool:
        return self.method == "GET" and self._get_paginator() is not None and self._is_list_view()

    def get_paginated_name(self, serializer_name: str) -> str:
        return f"{serializer_name}List"

    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        for code in sorted(self._error_codes()):
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=ERROR_WHY[code]), str(code), direction=direction
                )
        return responses


class NoSlashEndpointEnumerator(EndpointEnumerator):
    """Routes take an optional trailing slash (``core.routing``); list them as the seed writes them."""

    def get_path_from_regex(self, path_regex: str) -> str:
        path = super().get_path_from_regex(path_regex)
        return path.rstrip("/") or "/"


class BothApisGenerator(SchemaGenerator):
    """Walks the public URL conf (platform API) and the tenant URL conf (tenant API)."""

    endpoint_inspector_cls = NoSlashEndpointEnumerator

    def _initialise_endpoints(self) -> None:
        if self.endpoints is not None:
            return
        endpoints = []
        for urlconf in (settings.PUBLIC_SCHEMA_URLCONF, settings.ROOT_URLCONF):
            self.inspector = self.endpoint_inspector_cls(None, urlconf)
            endpoints += self.inspector.get_api_endpoints()
        self.endpoints = endpoints


def strict_request_bodies(result: dict, **kwargs) -> dict:
    """Request bodies refuse unknown keys (StrictSerializer); say so in the schema."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
