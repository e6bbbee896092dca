"""The one way lists are paged: ``?limit=`` (1 to 1000, default 100) and ``?offset=``."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from core.validation import DIGITS

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000


def _bounded_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not DIGITS.match(raw) or not low <= int(raw) <= high:
        raise serializers.ValidationError({name: [f"Must be a whole number from {low} to {high}."]})
    return int(raw)


class ListPage(BasePagination):
    """Answers ``{key: [...], "count": total}``, with ``"tenant"`` first for lists inside a tenant.

    Make one per list with ``ListPage.of("users", tenant=True)``; the view tells the tenant's
    id through ``paged_tenant_id()``. ``count`` is every item, not only this page's.
    """

    key = "items"
    tenant = False

    @classmethod
    def of(cls, key: str, tenant: bool = False) -> type[ListPage]:
        return type(f"{key.title()}Page", (cls,), {"key": key, "tenant": tenant})

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: object = None) -> list:
        limit = _bounded_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _bounded_int(request, "offset", 0, 0, MAX_OFFSET)
        items = list(queryset[offset : offset + limit])
        # A short first page tells the total by itself; only other pages cost a count query.
        self.count = queryset.count() if offset or len(items) == limit else len(items)
        self.tenant_id = view.paged_tenant_id() if self.tenant else None
        return items

    def get_paginated_response(self, data: list) -> Response:
        head = {"tenant": self.tenant_id} if self.tenant else {}
        return Response({**head, self.key: data, "count": self.count})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        properties = {"tenant": {"type": "string"}} if self.tenant else {}
        properties |= {self.key: schema, "count": {"type": "integer", "description": "All items, not only this page."}}
        return {"type": "object", "properties": properties, "required": list(properties)}

    def get_schema_operation_parameters(self, view: object) -> list[dict]:
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                "description": f"Default {DEFAULT_LIMIT}.",
            },
            {
                "name": "offset",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
                "description": "Default 0.",
            },
        ]
