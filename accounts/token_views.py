"""The one way a username and password become an API token, for staff and tenant users alike."""

from __future__ import annotations

from django.contrib.auth import authenticate
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.throttling import LoginRateThrottle
from api.validation import CredentialsSerializer


class TokenExchangeView(APIView):
    """POST: username and password for a token (throttled). DELETE: revoke the token in use.

    Subclasses name the token model, the authentication that finds its tokens, the
    permission a holder needs to revoke, and who may have a token at all.
    """

    token_model = None
    holder_permission = None

    def can_hold_token(self, user: object) -> bool:
        raise NotImplementedError

    def get_throttles(self):
        return [LoginRateThrottle()] if self.request.method == "POST" else []

    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else [self.holder_permission()]

    def post(self, request):
        serializer = CredentialsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request._request, **serializer.validated_data)
        if user is None or not self.can_hold_token(user):
            raise exceptions.AuthenticationFailed("Invalid username or password")
        _, raw_key = self.token_model.issue(user=user, name="api")
        return Response({"token": raw_key})

    def delete(self, request):
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
