"""JWTs for services (SPEC 8): pairs for a password or an API key, refresh with rotation, the JWKS, refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.test import override_settings
from django_tenants.utils import schema_context

from accounts import services
from accounts.models import RefreshToken, TenantUser
from core import signed_tokens
from tenants.models import Tenant
from tests.conftest import DEMO_PASSWORD, JsonClient
from tests.test_api_keys import bearer, new_key

pytestmark = pytest.mark.django_db

INVALID_TOKEN = {"error": "Invalid token"}


def pair_for(username: str = "alice", tenant: str = "acme") -> dict:
    response = JsonClient(tenant=tenant).post("/api/auth/jwt", {"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()


def claims_for(**changes) -> dict:
    now = int(time.time())
    claims = {"tenant": "acme", "sub": "1", "role": "admin", "iat": now, "nbf": now, "exp": now + 300}
    return {**claims, "jti": uuid.uuid4().hex, **changes}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict, claims: dict, sign) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


def refused(token: str, **options) -> bool:
    response = bearer(token, **options).get("/api/me")
    return (response.status_code, response.json()) == (401, INVALID_TOKEN)


# --- Issuing and using ---------------------------------------------------------------------------


def test_a_password_gives_a_pair_whose_access_token_names_its_tenant():
    body = pair_for()
    assert set(body) == {"tenant", "access", "refresh", "token_type", "expires_in"}
    assert (body["tenant"], body["token_type"], body["expires_in"]) == ("acme", "Bearer", 300)
    claims = jwt.decode(body["access"], options={"verify_signature": False})
    assert {"tenant", "sub", "role", "exp", "iat", "nbf", "jti"} <= set(claims)
    assert (claims["tenant"], claims["sub"], claims["role"]) == ("acme", "1", "admin")
    assert claims["exp"] - claims["iat"] == 300
    assert jwt.get_unverified_header(body["access"])["alg"] == "EdDSA"
    # The token alone reaches its tenant, and works on its host and header too.
    for client in (
        bearer(body["access"]),
        bearer(body["access"], tenant="acme"),
        bearer(body["access"], host="acme.localhost"),
    ):
        assert client.get("/api/me").json()["id"] == "acme"
    created = bearer(body["access"]).post("/api/users", {"name": "By Service"})
    assert created.status_code == 201


def test_a_members_token_has_the_members_rights():
    body = pair_for("bob")
    assert jwt.decode(body["access"], options={"verify_signature": False})["role"] == "member"
    assert bearer(body["access"]).get("/api/users").status_code == 200
    assert bearer(body["access"]).post("/api/users", {"name": "Nope"}).status_code == 403


def test_an_api_key_gives_a_pair_with_its_scopes():
    raw_key = new_key("globex", scopes=("read",))
    response = bearer(raw_key).post("/api/auth/jwt")
    assert response.status_code == 200, response.content
    body = response.json()
    claims = jwt.decode(body["access"], options={"verify_signature": False})
    assert claims["tenant"] == "globex" and claims["role"] == "key" and claims["scope"] == "read"
    assert claims["sub"].startswith("key:")
    assert bearer(body["access"]).get("/api/users").json()["tenant"] == "globex"
    assert bearer(body["access"]).post("/api/users", {"name": "Nope"}).status_code == 403
    assert bearer(body["access"]).get("/api/keys").status_code == 403
    # Revoking the key ends its tokens and their refresh at once.
    with schema_context("globex"):
        from accounts.models import ApiKey

        services.revoke_api_key(ApiKey.objects.get().pk)
    assert refused(body["access"])
    assert JsonClient(tenant="globex").post("/api/auth/jwt/refresh", {"refresh": body["refresh"]}).status_code == 401


def test_bad_sign_ins_are_refused():
    client = JsonClient(tenant="acme")
    assert client.post("/api/auth/jwt", {"username": "alice", "password": "wrong-one"}).status_code == 401
    assert client.post("/api/auth/jwt", {"username": "charlie", "password": DEMO_PASSWORD}).status_code == 401
    assert client.post("/api/auth/jwt", {"username": "alice"}).status_code == 400
    assert client.post("/api/auth/jwt", {}).status_code == 400
    raw_key = new_key("acme")
    both = bearer(raw_key).post("/api/auth/jwt", {"username": "alice", "password": DEMO_PASSWORD})
    assert both.status_code == 400
    assert bearer(raw_key + "x").post("/api/auth/jwt").json() == {"error": "Invalid API key"}


def test_the_password_route_uses_the_shared_sign_in_throttle_and_refresh_does_not_spend_it():
    pair = pair_for()  # one attempt of the address's ten
    client = JsonClient(tenant="acme")
    statuses = [client.post("/api/auth/jwt", {"username": "alice", "password": "wrong"}).status_code for _ in range(11)]
    assert statuses[:9] == [401] * 9 and statuses[9:] == [429, 429]
    # A refresh checks no password (its token is a 256-bit secret): services behind the same address go on.
    assert client.post("/api/auth/jwt/refresh", {"refresh": pair["refresh"]}).status_code == 200
    assert client.post("/api/auth/jwt/refresh", {"refresh": "x"}).status_code == 401


# --- Refresh ------------------------------------------------------------------------------------


def test_refresh_rotates_and_a_reused_refresh_token_is_refused():
    first = pair_for()
    client = JsonClient(tenant="acme")
    second = client.post("/api/auth/jwt/refresh", {"refresh": first["refresh"]})
    assert second.status_code == 200
    second = second.json()
    assert second["refresh"] != first["refresh"] and second["access"] != first["access"]
    assert bearer(second["access"]).get("/api/me").status_code == 200
    reused = client.post("/api/auth/jwt/refresh", {"refresh": first["refresh"]})
    assert (reused.status_code, reused.json()) == (401, {"error": "Invalid refresh token"})
    # The reuse retired the whole family: the newer refresh token is dead too.
    assert client.post("/api/auth/jwt/refresh", {"refresh": second["refresh"]}).status_code == 401


def test_a_refresh_token_is_valid_only_in_its_tenant():
    body = pair_for("charlie", tenant="globex")
    assert JsonClient(tenant="acme").post("/api/auth/jwt/refresh", {"refresh": body["refresh"]}).status_code == 401
    assert JsonClient(tenant="globex").post("/api/auth/jwt/refresh", {"refresh": body["refresh"]}).status_code == 200


def test_a_deactivated_users_refresh_fails_at_once():
    body = pair_for("bob")
    with schema_context("acme"):
        services.update_user(TenantUser.objects.get(username="bob").pk, {"is_active": False})
    response = JsonClient(tenant="acme").post("/api/auth/jwt/refresh", {"refresh": body["refresh"]})
    assert (response.status_code, response.json()) == (401, {"error": "Invalid refresh token"})
    assert refused(body["access"])
    with schema_context("acme"):
        assert not RefreshToken.objects.filter(user__username="bob").exists()


def test_an_expired_refresh_token_is_refused():
    body = pair_for()
    with schema_context("acme"):
        from django.utils import timezone

        RefreshToken.objects.update(expires_at=timezone.now())
    assert JsonClient(tenant="acme").post("/api/auth/jwt/refresh", {"refresh": body["refresh"]}).status_code == 401


# --- Refused access tokens --------------------------------------------------------------------------


def test_expired_and_not_yet_valid_tokens_are_refused():
    now = int(time.time())
    assert not refused(signed_tokens.sign(claims_for()))
    assert refused(signed_tokens.sign(claims_for(iat=now - 400, nbf=now - 400, exp=now - 100)))
    assert refused(signed_tokens.sign(claims_for(nbf=now + 60)))
    assert refused(signed_tokens.sign(claims_for(exp="never")))
    without_jti = claims_for()
    del without_jti["jti"]
    assert refused(signed_tokens.sign(without_jti))


def test_a_wrong_signature_is_refused():
    other = Ed25519PrivateKey.generate()
    kid = signed_tokens.keyring().kid
    assert refused(jwt.encode(claims_for(), other, algorithm="EdDSA", headers={"kid": kid}))
    good = signed_tokens.sign(claims_for())
    head, _, signature = good.split(".")
    tampered_claims = b64(json.dumps(claims_for(sub="2")).encode())
    assert refused(f"{head}.{tampered_claims}.{signature}")


def test_alg_none_is_refused():
    kid = signed_tokens.keyring().kid
    token = handmade({"alg": "none", "typ": "JWT", "kid": kid}, claims_for(), lambda _: b"")
    assert refused(token)
    assert refused(token.rsplit(".", 1)[0] + ".")


def test_hs256_with_the_public_key_as_secret_is_refused():
    ring = signed_tokens.keyring()
    public = ring.private_key.public_key()
    secrets_an_attacker_has = [
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        json.dumps(signed_tokens.jwks()["keys"][0]).encode(),
    ]
    for secret in secrets_an_attacker_has:
        token = handmade(
            {"alg": "HS256", "typ": "JWT", "kid": ring.kid},
            claims_for(),
            lambda data, secret=secret: hmac.new(secret, data, hashlib.sha256).digest(),
        )
        assert refused(token)


def test_an_unknown_kid_is_refused():
    ring = signed_tokens.keyring()
    assert refused(jwt.encode(claims_for(), ring.private_key, algorithm="EdDSA", headers={"kid": "unknown"}))
    assert refused(jwt.encode(claims_for(), ring.private_key, algorithm="EdDSA"))  # no kid at all


def test_a_token_of_one_tenant_is_refused_on_every_other():
    access = pair_for()["access"]
    assert refused(access, tenant="globex")
    assert refused(access, host="globex.localhost")
    assert refused(access, host="globex.localhost", tenant="globex")
    # A well-signed token naming an unknown tenant, or none.
    assert refused(signed_tokens.sign(claims_for(tenant="initech")))
    assert refused(signed_tokens.sign(claims_for(tenant="Not A Tenant")))
    assert refused(signed_tokens.sign(claims_for(tenant=None)))


def test_a_token_for_someone_gone_is_refused():
    assert refused(signed_tokens.sign(claims_for(sub="999")))
    assert refused(signed_tokens.sign(claims_for(sub="key:0123456789ab")))
    assert refused(signed_tokens.sign(claims_for(sub=1)))
    assert refused("eyJ.garbage.here")


# --- The JWKS and rotation ------------------------------------------------------------------------


def test_the_jwks_verifies_tokens_and_lists_retired_keys(tmp_path):
    jwks = JsonClient().get("/.well-known/jwks.json")
    assert jwks.status_code == 200 and "max-age" in jwks["Cache-Control"]
    keys = jwks.json()["keys"]
    assert [key["kid"] for key in keys] == [signed_tokens.keyring().kid]
    assert keys[0]["kty"] == "OKP" and keys[0]["alg"] == "EdDSA" and "d" not in keys[0]
    access = pair_for()["access"]
    public = jwt.PyJWK(keys[0]).key
    assert jwt.decode(access, public, algorithms=["EdDSA"])["tenant"] == "acme"
    assert JsonClient(host="acme.localhost").get("/.well-known/jwks.json").json()["keys"] == keys

    # Rotation: a new signing key, the old one's public half still published and accepted.
    old_token = signed_tokens.sign(claims_for())
    old_private = signed_tokens.keyring().private_key
    old_file = tmp_path / "old.pem"
    old_file.write_bytes(
        old_private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    new_file = tmp_path / "new.pem"
    new_file.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    signed_tokens.keyring.cache_clear()
    signed_tokens._verified.clear()
    try:
        with override_settings(JWT_PRIVATE_KEY_FILE=str(new_file), JWT_PREVIOUS_PUBLIC_KEY_FILES=[str(old_file)]):
            rotated = JsonClient().get("/.well-known/jwks.json").json()["keys"]
            assert [key["kid"] for key in rotated][1:] == [keys[0]["kid"]] and rotated[0]["kid"] != keys[0]["kid"]
            assert not refused(old_token)
            new_token = signed_tokens.sign(claims_for())
            assert jwt.get_unverified_header(new_token)["kid"] == rotated[0]["kid"]
            assert not refused(new_token)
        signed_tokens.keyring.cache_clear()
        signed_tokens._verified.clear()
        with override_settings(JWT_PRIVATE_KEY_FILE=str(new_file), JWT_PREVIOUS_PUBLIC_KEY_FILES=[]):
            assert refused(old_token)  # retired for good
    finally:
        signed_tokens.keyring.cache_clear()
        signed_tokens._verified.clear()


def test_tenants_unknown_to_a_token_cannot_use_it(charlie):
    """A globex user's id is 1 like alice's: the tenant claim, not the id, decides."""
    token = pair_for("charlie", tenant="globex")["access"]
    assert bearer(token).get("/api/me").json()["id"] == "globex"
    assert refused(token, tenant="acme")
    with schema_context("acme"):
        assert TenantUser.objects.get(pk=1).username == "alice"
    assert Tenant.objects.filter(pk="globex").exists()


def test_the_readmes_verifier_works_as_written(tmp_path):
    """The README's snippet for other services, run against a real server: it verifies with the JWKS alone."""
    from django.conf import settings

    from tests.test_two_workers import serving

    readme = (settings.BASE_DIR / "README.md").read_text()
    snippet = next(block for block in readme.split("```python\n")[1:] if "JWKS_URL" in block).split("```")[0]
    access = pair_for()["access"]
    with serving(tmp_path) as (port, _):
        namespace: dict = {}
        exec(snippet.replace("127.0.0.1:8000", f"127.0.0.1:{port}"), namespace)
        claims = namespace["verify"](access, "acme")
        assert (claims["tenant"], claims["sub"]) == ("acme", "1")
        with pytest.raises(jwt.InvalidTokenError):
            namespace["verify"](access, "globex")
        other = jwt.encode(claims_for(), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": "x"})
        with pytest.raises(jwt.PyJWTError):
            namespace["verify"](other, "acme")
