"""Django REST framework and the OpenAPI description."""

from config.settings.security import LOGIN_RATE
from config.settings.tenancy import TENANT_BASE_DOMAIN

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "api.openapi.ProjectAutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Client addresses come from REMOTE_ADDR, which TrustedProxyMiddleware sets from trusted proxies only.
    "NUM_PROXIES": 0,
    "DEFAULT_THROTTLE_RATES": {"login": LOGIN_RATE},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tenant platform API",
    "DESCRIPTION": (
        "Platform routes (`/admin/...`) run on the public host, for platform staff. Tenant routes (`/api/...`) run "
        f"on the tenant's own host (`acme.{TENANT_BASE_DOMAIN}` for the tenant `acme`), or on the public host with "
        "the `X-Tenant-ID` header. Every route answers with and without a trailing slash; every error is JSON "
        '`{"error": "..."}`.'
    ),
    "VERSION": "1.0.0",
    "DEFAULT_GENERATOR_CLASS": "api.openapi.BothApisGenerator",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.openapi.strict_request_bodies",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
