"""DRF authentication: hashed API tokens, tenant API keys and sessions, each valid only where it was issued."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import authentication, exceptions

from accounts.backends import on_public_schema


class HashedTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token <key>``, found by digest by the subclass's ``lookup``."""

    keyword = "Token"

    def applies(self) -> bool:
        return True

    def lookup(self, raw_key: str):
        """The token of ``raw_key`` with its ``user``, or None (``raw_key`` is 1 to 128 ASCII characters)."""
        raise NotImplementedError

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header")
        try:
            raw_key = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token header") from exc
        token = self.lookup(raw_key) if self.applies() and 0 < len(raw_key) <= 128 else None
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid token")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class StaffTokenAuthentication(HashedTokenAuthentication):
    """Platform staff tokens; they exist only in the public schema."""

    def applies(self) -> bool:
        return on_public_schema()

    def lookup(self, raw_key: str):
        from tenants.models import StaffToken

        return StaffToken.lookup(raw_key)


class TenantTokenAuthentication(HashedTokenAuthentication):
    """Tenant user tokens; each tenant's live in its own schema, so they cannot cross over.

    Checked from this process's memory on a warm worker (``accounts.tokens``).
    """

    def applies(self) -> bool:
        return not on_public_schema()

    def lookup(self, raw_key: str):
        from accounts import tokens

        return tokens.find(raw_key)


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """The Django admin's session, for platform staff only."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None or not isinstance(result[0], get_user_model()):
            return None
        return result


class TenantSessionAuthentication(authentication.SessionAuthentication):
    """The tenant host's session, for that tenant's users only."""

    def authenticate(self, request):
        from accounts.models import TenantUser

        result = super().authenticate(request)
        if result is None or not isinstance(result[0], TenantUser):
            return None
        return result


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """A tenant API key (``Authorization: Bearer`` or ``X-API-Key``), as the tenant middleware found it.

    The middleware has already refused a key of another tenant; here the key is checked
    in the tenant's schema (``accounts.keys``). Bad, expired or revoked: 401 "Invalid API key".
    """

    def authenticate(self, request):
        from accounts import keys

        credential = getattr(request, "credential", None)
        if credential is None or credential.kind != "key":
            return None
        principal = keys.authenticate(credential)
        if principal is None:
            raise exceptions.AuthenticationFailed(credential.refusal)
        return principal, None

    def authenticate_header(self, request) -> str:
        return "Bearer"


class JwtAuthentication(authentication.BaseAuthentication):
    """An access token (``Authorization: Bearer <JWT>``), verified by the tenant middleware.

    The middleware checked the signature and times and refused a token of another tenant;
    here the token's subject must still be an active user of this tenant or a usable key.
    """

    def authenticate(self, request):
        from accounts.service_tokens import principal_of

        credential = getattr(request, "credential", None)
        if credential is None or credential.kind != "jwt":
            return None
        principal = principal_of(credential.claims)
        if principal is None:
            raise exceptions.AuthenticationFailed(credential.refusal)
        return principal, credential.claims

    def authenticate_header(self, request) -> str:
        return "Bearer"
