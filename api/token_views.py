"""The one way a username and password become an API token, for staff and tenant users alike.

Sign-in attempts are throttled where the password is checked (``accounts.throttling``).
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status, views, viewsets
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.inputs import CredentialsSerializer
from api.serializers import JwksSerializer, TokenSerializer
from api.validation import validated
from core import signed_tokens


class TokenExchangeViewSet(viewsets.ViewSet):
    """POST: username and password for a token (429 over the sign-in throttle). DELETE: revoke the token in use.

    Subclasses say who may hold a token (``can_hold_token``), how a token is issued
    (``issue``), and the permission a holder needs to revoke one.
    """

    singleton = True
    holder_permission: type[BasePermission]
    # Read by the OpenAPI description: POST may answer the sign-in throttle's 429.
    signs_in = True

    def can_hold_token(self, user: object) -> bool:
        raise NotImplementedError

    def issue(self, user: object) -> str:
        raise NotImplementedError

    def get_throttles(self) -> list:
        # Signing in is anonymous: it must not spend a tenant's plan limit (anyone could).
        return [] if self.request.method == "POST" else super().get_throttles()

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


class JwksView(views.APIView):
    """``/.well-known/jwks.json``: the public keys that verify this platform's JWTs (current first)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(operation_id="jwks", responses=JwksSerializer)
    def get(self, request: Request) -> Response:
        response = Response(JwksSerializer(signed_tokens.jwks()).data)
        # Verifiers may keep the keys for a while; a rotation keeps the old key published longer than this.
        response["Cache-Control"] = "public, max-age=300"
        return response
