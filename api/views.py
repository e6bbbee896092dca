"""The tenant-scoped API; every view runs in the tenant's schema."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import TenantSessionAuthentication, TenantTokenAuthentication
from tenants import selectors


class TenantView(APIView):
    authentication_classes = [TenantTokenAuthentication, TenantSessionAuthentication]


class TenantProfileView(TenantView):
    def get(self, request):
        return Response(selectors.tenant_profile(request.tenant))
