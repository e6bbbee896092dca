"""Short-lived JWTs signed with the platform's Ed25519 key (EdDSA), and the public keys as a JWKS.

Any service can verify a token with the public keys at ``/.well-known/jwks.json`` alone,
without a round trip to this project. Each key is named by its RFC 7638 thumbprint
(``kid``), so keys can rotate: the current private key signs, and the public keys of
retired ones (``JWT_PREVIOUS_PUBLIC_KEY_FILES``) are still published and accepted until
the tokens they signed have expired.

Only EdDSA is accepted, with a known ``kid``: ``alg: none``, HMAC with the public key as
its secret, and any other algorithm are refused. This module knows no tenant rule: the
claims it requires are checked for presence and time only.

The private key comes from ``JWT_PRIVATE_KEY`` (PEM text), else from the file
``JWT_PRIVATE_KEY_FILE``; outside PRODUCTION a missing file is created with a new key on
first use (the default path, ``.secrets/``, is git-ignored).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ("tenant", "sub", "role", "exp", "iat", "nbf", "jti")
# Verified tokens kept per process, so a client that sends the same token again costs a dictionary read.
MAX_VERIFIED = 10_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(public_key: Ed25519PublicKey) -> dict:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}
    # RFC 7638: the SHA-256 of the required members, in lexicographic order, without spaces.
    thumbprint = _b64(hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()).digest())
    return {**jwk, "kid": thumbprint, "use": "sig", "alg": ALGORITHM}


@dataclass(frozen=True)
class Keyring:
    kid: str
    private_key: Ed25519PrivateKey
    public_keys: dict[str, Ed25519PublicKey]
    jwks: dict


def _generate(path: Path) -> None:
    """Write a new private key to ``path``, unless another process wrote one first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".jwt-key-")
    try:
        os.write(fd, pem)
        os.close(fd)
        os.chmod(temporary, 0o600)
        # Atomic, and fails if the file exists: the first writer wins, the others read its key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def _private_pem() -> bytes:
    if settings.JWT_PRIVATE_KEY:
        return settings.JWT_PRIVATE_KEY.replace("\\n", "\n").encode()
    path = Path(settings.JWT_PRIVATE_KEY_FILE)
    if not path.exists():
        if settings.PRODUCTION:
            raise ImproperlyConfigured("PRODUCTION needs JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE (an Ed25519 key)")
        _generate(path)
    return path.read_bytes()


def _load_public(path: str) -> Ed25519PublicKey:
    data = Path(path).read_bytes()
    key = (
        serialization.load_pem_private_key(data, password=None).public_key()
        if b"PRIVATE KEY" in data
        else serialization.load_pem_public_key(data)
    )
    if not isinstance(key, Ed25519PublicKey):
        raise ImproperlyConfigured(f"{path}: not an Ed25519 key")
    return key


@functools.cache
def keyring() -> Keyring:
    private_key = serialization.load_pem_private_key(_private_pem(), password=None)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ImproperlyConfigured("The JWT signing key must be an Ed25519 private key")
    publics = [private_key.public_key()] + [_load_public(path) for path in settings.JWT_PREVIOUS_PUBLIC_KEY_FILES]
    jwks = [public_jwk(key) for key in publics]
    return Keyring(
        kid=jwks[0]["kid"],
        private_key=private_key,
        public_keys={jwk["kid"]: key for jwk, key in zip(jwks, publics, strict=True)},
        jwks={"keys": jwks},
    )


def sign(claims: dict) -> str:
    """A JWT of ``claims``, signed with the current key and naming it in its ``kid`` header."""
    ring = keyring()
    return jwt.encode(claims, ring.private_key, algorithm=ALGORITHM, headers={"kid": ring.kid})


_verified: dict[str, dict] = {}
_verified_lock = threading.Lock()


def _check_times(claims: dict, now: float) -> bool:
    return claims["nbf"] <= now < claims["exp"]


def verify(token: str) -> dict | None:
    """The claims of a valid token (known kid, EdDSA, good signature, within nbf and exp), or None."""
    now = time.time()
    known = _verified.get(token)
    if known is not None:
        return known if _check_times(known, now) else None
    ring = keyring()
    try:
        header = jwt.get_unverified_header(token)
        public_key = ring.public_keys.get(header.get("kid"))
        if public_key is None or header.get("alg") != ALGORITHM:
            return None
        claims = jwt.decode(
            token,
            public_key,
            algorithms=[ALGORITHM],
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if not all(isinstance(claims[name], int) for name in ("exp", "iat", "nbf")) or not _check_times(claims, now):
        return None
    with _verified_lock:
        if len(_verified) >= MAX_VERIFIED:
            _verified.clear()
        _verified[token] = claims
    return claims


def looks_like_jwt(value: str) -> bool:
    """Three base64url segments, the first a JSON object (``eyJ``): what a JWT looks like before checking it."""
    return value.startswith("eyJ") and value.count(".") == 2


def jwks() -> dict:
    """The public keys, current first, as a JSON Web Key Set."""
    return keyring().jwks
