"""Credentials that name their tenant by themselves: tenant API keys and service tokens (JWTs).

A request that carries one needs no subdomain and no ``X-Tenant-ID``: the tenant
resolution middleware reads the tenant from the credential before any schema is chosen,
and refuses the credential on any other tenant's host or header. This module knows the
formats and where a request carries them; checking a key against its stored digest is
the job of ``accounts.keys``, in the tenant's schema. A JWT is verified here, signature
and times (``core.signed_tokens``), since only a verified ``tenant`` claim may choose a schema.

An API key reads ``tk_<tenant id>_<key id>_<secret>``: the tenant id (no underscore in
it, see ``tenants.ids``), a 12-hex-digit key id, public, by which the key is found, and
43 characters of URL-safe base64 (256 random bits). Only a SHA-256 digest of the whole
key is stored.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from django.http import HttpRequest

from core import signed_tokens
from tenants.ids import is_well_formed_tenant_id

API_KEY_PREFIX = "tk_"
API_KEY_HEADER_META = "HTTP_X_API_KEY"
INVALID_API_KEY = "Invalid API key"
INVALID_TOKEN = "Invalid token"
_KEY_ID = re.compile(r"[0-9a-f]{12}\Z")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}\Z")
# Longer than any key or token this project issues; longer values are refused unread.
MAX_LENGTH = 2048


@dataclass(frozen=True)
class ParsedKey:
    tenant_id: str
    key_id: str


def new_api_key(tenant_id: str) -> tuple[str, str]:
    """A fresh key of ``tenant_id``: (key id, raw key). The raw key is shown once and never stored."""
    key_id = secrets.token_hex(6)
    return key_id, f"{API_KEY_PREFIX}{tenant_id}_{key_id}_{secrets.token_urlsafe(32)}"


def key_prefix(tenant_id: str, key_id: str) -> str:
    """The public start of a key, by which people tell their keys apart."""
    return f"{API_KEY_PREFIX}{tenant_id}_{key_id}"


def parse_api_key(raw: str) -> ParsedKey | None:
    """The tenant and key id a well-formed key names; None for anything else."""
    if len(raw) > MAX_LENGTH or not raw.startswith(API_KEY_PREFIX):
        return None
    parts = raw[len(API_KEY_PREFIX) :].split("_", 2)
    if len(parts) != 3:
        return None
    tenant_id, key_id, secret = parts
    if not (is_well_formed_tenant_id(tenant_id) and _KEY_ID.match(key_id) and _SECRET.match(secret)):
        return None
    return ParsedKey(tenant_id, key_id)


@dataclass(frozen=True)
class Credential:
    """A key or token a request presents; ``tenant_id`` is None when it names no tenant (malformed, bad)."""

    kind: str  # "key" or "jwt"
    raw: str
    tenant_id: str | None
    key_id: str | None = None
    claims: dict | None = None

    @property
    def refusal(self) -> str:
        """What a client is told when the credential is refused, whatever the reason."""
        return INVALID_API_KEY if self.kind == "key" else INVALID_TOKEN


def _api_key(raw: str) -> Credential:
    parsed = parse_api_key(raw)
    if parsed is None:
        return Credential("key", "", None)
    return Credential("key", raw, parsed.tenant_id, key_id=parsed.key_id)


def _jwt(raw: str) -> Credential:
    claims = signed_tokens.verify(raw) if len(raw) <= MAX_LENGTH else None
    tenant_id = claims.get("tenant") if claims is not None else None
    if not is_well_formed_tenant_id(tenant_id):
        return Credential("jwt", "", None)
    return Credential("jwt", raw, tenant_id, claims=claims)


def presented(request: HttpRequest) -> Credential | None:
    """The API key (``X-API-Key``, or ``Authorization: Bearer``) or JWT (Bearer) a request carries, if any.

    ``Authorization: Token`` (user tokens) and sessions are not credentials of this kind:
    they live in a tenant's schema and are checked there, once the tenant is known.
    """
    meta = request.META
    if API_KEY_HEADER_META in meta:
        return _api_key(meta[API_KEY_HEADER_META].strip())
    scheme, _, value = meta.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return _jwt(value) if signed_tokens.looks_like_jwt(value) else _api_key(value)
