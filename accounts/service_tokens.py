"""JWT pairs for services: a short-lived access token and a refresh token used once.

The access token (``JWT_ACCESS_SECONDS``, 5 minutes) is a JWT signed by ``core.signed_tokens``
with the claims ``tenant``, ``sub`` (a user id, or ``key:<key id>`` for an API key),
``role`` (``admin``, ``member`` or ``key``), ``iat``, ``nbf``, ``exp`` and ``jti``; a key's
token also has ``scope``. Other services verify it with the JWKS alone.

The refresh token is opaque, stored as a digest in the tenant's schema (``RefreshToken``).
Refreshing retires it and issues a new pair of the same family; presenting a retired one
again retires the whole family (someone kept a copy), as does a deactivated user or a
revoked or expired key: the refresh fails at once.
"""

from __future__ import annotations

import datetime
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import tokens
from accounts.errors import InvalidRefreshToken
from accounts.keys import ApiKeyPrincipal, find
from accounts.models import RefreshToken, TenantUser
from core import signed_tokens
from core.models import digest
from core.validation import parse_id
from tenants.models import Tenant

KEY_SUBJECT = "key:"


@dataclass(frozen=True)
class TokenPair:
    tenant: str
    access: str
    refresh: str
    expires_in: int
    token_type: str = "Bearer"


def _access_token(tenant: Tenant, subject: str, role: str, **extra: object) -> str:
    now = int(time.time())
    claims = {
        "tenant": tenant.id,
        "sub": subject,
        "role": role,
        "iat": now,
        "nbf": now,
        "exp": now + settings.JWT_ACCESS_SECONDS,
        "jti": uuid.uuid4().hex,
        **extra,
    }
    return signed_tokens.sign(claims)


def _pair(tenant: Tenant, *, user: TenantUser | None, api_key_pk: int | None, family: str, access: str) -> TokenPair:
    _, raw_refresh = RefreshToken.issue(
        name="jwt",
        user=user,
        api_key_id=api_key_pk,
        family=family,
        expires_at=timezone.now() + datetime.timedelta(seconds=settings.JWT_REFRESH_SECONDS),
    )
    return TokenPair(tenant=tenant.id, access=access, refresh=raw_refresh, expires_in=settings.JWT_ACCESS_SECONDS)


def issue_for_user(tenant: Tenant, user: TenantUser, family: str | None = None) -> TokenPair:
    access = _access_token(tenant, str(user.pk), user.role)
    return _pair(tenant, user=user, api_key_pk=None, family=family or uuid.uuid4().hex, access=access)


def issue_for_key(tenant: Tenant, key: ApiKeyPrincipal, family: str | None = None) -> TokenPair:
    access = _access_token(tenant, f"{KEY_SUBJECT}{key.key_id}", "key", scope=" ".join(key.scopes))
    return _pair(tenant, user=None, api_key_pk=key.pk, family=family or uuid.uuid4().hex, access=access)


def _usable_key(key_id: str) -> ApiKeyPrincipal | None:
    key = find(key_id)
    return key if key is not None and not key.expired() else None


def refresh(tenant: Tenant, raw_refresh: str) -> TokenPair:
    """A new pair for a refresh token, which is retired; InvalidRefreshToken (401) otherwise."""
    if not raw_refresh or len(raw_refresh) > 128:
        raise InvalidRefreshToken()
    with transaction.atomic():
        token = (
            RefreshToken.objects.select_for_update(of=("self",))
            .select_related("user", "api_key")
            .filter(key_digest=digest(raw_refresh))
            .first()
        )
        if token is None:
            raise InvalidRefreshToken()
        key = _usable_key(token.api_key.key_id) if token.api_key is not None else None
        holder_ok = (token.user is not None and token.user.is_active) or key is not None
        if token.used_at is not None or token.expires_at <= timezone.now() or not holder_ok:
            # Committed before the refusal: the family must end even though this request fails.
            RefreshToken.objects.filter(family=token.family).delete()
            pair = None
        else:
            token.used_at = timezone.now()
            token.save(update_fields=["used_at"])
            if key is not None:
                pair = issue_for_key(tenant, key, family=token.family)
            else:
                pair = issue_for_user(tenant, token.user, family=token.family)
    if pair is None:
        raise InvalidRefreshToken()
    return pair


def principal_of(claims: dict) -> TenantUser | ApiKeyPrincipal | None:
    """Who a verified access token of this tenant speaks for: an active user, or a usable key."""
    subject = claims["sub"]
    if not isinstance(subject, str):
        return None
    if subject.startswith(KEY_SUBJECT):
        return _usable_key(subject[len(KEY_SUBJECT) :])
    pk = parse_id(subject)
    user = tokens.user(pk) if pk is not None else None
    return user if user is not None and user.is_active else None
