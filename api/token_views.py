"""The one way a username and password become an API token, for staff and tenant users alike."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status, viewsets
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.inputs import CredentialsSerializer
from accounts.throttling import LoginRateThrottle
from api.serializers import TokenSerializer
from api.validation import validated


class TokenExchangeViewSet(viewsets.ViewSet):
    """POST: username and password for a token (throttled). DELETE: revoke the token in use.

    Subclasses say who may hold a token (``can_hold_token``), how a token is issued
    (``issue``), and the permission a holder needs to revoke one.
    """

    singleton = True
    holder_permission: type[BasePermission]

    def can_hold_token(self, user: object) -> bool:
        raise NotImplementedError

    def issue(self, user: object) -> str:
        raise NotImplementedError

    def get_throttles(self) -> list:
        return [LoginRateThrottle()] if self.request.method == "POST" else []

    def get_permissions(self) -> list:
        return [AllowAny()] if self.request.method == "POST" else [self.holder_permission()]

    @extend_schema(request=CredentialsSerializer, responses={200: TokenSerializer})
    def create(self, request: Request) -> Response:
        user = authenticate(request._request, **validated(CredentialsSerializer, request))
        if user is None or not self.can_hold_token(user):
            raise exceptions.AuthenticationFailed("Invalid username or password")
        return Response(TokenSerializer({"token": self.issue(user)}).data)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request: Request) -> Response:
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
