"""Discovery, JWKS and signing keys over real HTTP on the IdP port: issuers are created through
the Core API, the token service learns them from JetStream, creates one key per algorithm, serves
discovery and the JWKS from memory, signs tokens that verify with PyJWT against the discovered
JWKS, rotates on schedule (driven by a FixedClock), and never lets private material into an
event."""

from __future__ import annotations

import base64
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from psycopg import sql

from authpi.crypto.clock import FixedClock
from authpi.platform.testing.tenants import part
from authpi.testing.plugin import eventually
from authpi.token.domain.rotation import DAY_MS, OVERLAP_MS, next_rotation_after

ALGS = ("ES256", "EdDSA", "RS256")
KEY_SHAPES = {
    "ES256": {"kty": "EC", "crv": "P-256"},
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
    "RS256": {"kty": "RSA"},
}
SPEC_FIELDS = {
    "issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
    "introspection_endpoint", "revocation_endpoint", "end_session_endpoint",
    "check_session_iframe", "response_types_supported", "response_modes_supported",
    "grant_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported",
    "token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported",
    "revocation_endpoint_auth_methods_supported", "code_challenge_methods_supported",
    "scopes_supported", "claims_supported", "prompt_values_supported",
    "claims_parameter_supported", "request_parameter_supported",
    "request_uri_parameter_supported", "frontchannel_logout_supported",
    "frontchannel_logout_session_supported", "backchannel_logout_supported",
    "backchannel_logout_session_supported", "authorization_response_iss_parameter_supported",
}  # fmt: skip


def core(platform) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=platform.api_url,
        auth=(platform.api_key_id, platform.api_key_secret),
        timeout=30,
    )


def idp(platform) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=platform.idp_url, timeout=30)


async def discovered_jwks(platform, issuer_id: str) -> dict:
    """What a relying party does: discovery first, then the jwks_uri it names."""
    async with idp(platform) as client:
        config = (await client.get(f"/{issuer_id}/.well-known/openid-configuration")).json()
        return (await client.get(config["jwks_uri"])).json()


def verify(token: str, jwks: dict, **options) -> dict:
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWKSet.from_dict(jwks)[kid]
    return jwt.decode(
        token, key.key, algorithms=list(ALGS), audience="api://tests", options=options
    )


async def token_events(platform, pool) -> list[tuple[str, str, str]]:
    query = sql.SQL("SELECT type, data::text, meta::text FROM {}.events ORDER BY position").format(
        sql.Identifier(f"{platform.namespace}_token")
    )
    async with pool.connection() as conn:
        return await (await conn.execute(query)).fetchall()


@pytest.fixture
async def issuer_id(platform, issuer_with_keys) -> str:
    _, issuer_id = await issuer_with_keys(platform, "Token tests")
    return issuer_id


async def test_discovery_lists_every_spec_field_with_the_issuer_url(platform, issuer_id):
    issuer = f"{platform.idp_url}/{issuer_id}"
    async with idp(platform) as client:
        resp = await client.get(f"/{issuer_id}/.well-known/openid-configuration")
        oauth = await client.get(f"/{issuer_id}/.well-known/oauth-authorization-server")
        rfc8414 = await client.get(f"/.well-known/oauth-authorization-server/{issuer_id}")
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "public, max-age=3600"
    doc = resp.json()
    assert set(doc) == SPEC_FIELDS
    assert doc["issuer"] == issuer and not doc["issuer"].endswith("/")
    for field, suffix in [
        ("authorization_endpoint", "authorize"), ("token_endpoint", "token"),
        ("userinfo_endpoint", "userinfo"), ("jwks_uri", "jwks.json"),
        ("introspection_endpoint", "introspect"), ("revocation_endpoint", "revoke"),
        ("end_session_endpoint", "logout"), ("check_session_iframe", "check-session.html"),
    ]:  # fmt: skip
        assert doc[field] == f"{issuer}/{suffix}"
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["ES256", "EdDSA", "RS256"]
    assert doc["grant_types_supported"] == [
        "authorization_code", "refresh_token", "client_credentials"
    ]  # fmt: skip
    assert {"openid", "profile", "email", "offline_access"} <= set(doc["scopes_supported"])
    assert doc["authorization_response_iss_parameter_supported"] is False
    assert oauth.status_code == 200 and oauth.json() == doc
    assert rfc8414.status_code == 200 and rfc8414.json() == doc


async def test_jwks_publishes_one_key_per_algorithm_with_cache_headers(platform, issuer_id):
    async with idp(platform) as client:
        resp = await client.get(f"/{issuer_id}/jwks.json")
        again = await client.get(
            f"/{issuer_id}/jwks.json", headers={"If-None-Match": resp.headers["etag"]}
        )
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "public, max-age=600, stale-while-revalidate=86400"
    assert resp.headers["access-control-allow-origin"] == "*"
    assert resp.headers["etag"].startswith('"')
    assert again.status_code == 304
    keys = resp.json()["keys"]
    assert sorted(k["alg"] for k in keys) == sorted(ALGS)
    for key in keys:
        assert {f: key[f] for f in KEY_SHAPES[key["alg"]]} == KEY_SHAPES[key["alg"]]
        assert key["use"] == "sig" and key["ext"] is True
        assert str(uuid.UUID(key["kid"])) == key["kid"]
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


@pytest.mark.parametrize("alg", ALGS)
async def test_token_signed_by_the_service_verifies_against_the_discovered_jwks(
    platform, issuer_id, alg
):
    signer = part(platform, "signer")
    now = int(time.time())
    claims = {
        "iss": f"{platform.idp_url}/{issuer_id}",
        "sub": "usr_1",
        "aud": "api://tests",
        "iat": now,
        "exp": now + 1800,
    }
    token = signer.sign(issuer_id, claims, alg=alg, typ="at+jwt")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == alg and header["typ"] == "at+jwt"
    jwks = await discovered_jwks(platform, issuer_id)
    assert header["kid"] in {k["kid"] for k in jwks["keys"] if k["alg"] == alg}
    assert verify(token, jwks, require=["exp", "iss"]) == claims


async def test_tokens_above_the_21_day_cap_are_refused(platform, issuer_id):
    signer = part(platform, "signer")
    with pytest.raises(ValueError):
        signer.sign(issuer_id, {"sub": "usr_1", "iat": 0, "exp": 21 * 86_400 + 1})
    assert signer.sign(issuer_id, {"sub": "usr_1", "iat": 0, "exp": 21 * 86_400})


async def test_rotation_publishes_new_keys_and_drops_keys_after_the_overlap(
    platform, issuer_id, jwks_of
):
    keys, signer = part(platform, "keys"), part(platform, "signer")
    first = {k["kid"] for k in (await jwks_of(platform, issuer_id))["keys"]}
    clock = FixedClock(int(time.time() * 1000))
    born = clock.now_ms()
    old_token = signer.sign(issuer_id, {"sub": "usr_1", "aud": "api://tests"}, alg="ES256")

    async def rotate_at(instant: int) -> None:
        clock.advance(ms=instant - clock.now_ms())
        await keys.rotate(clock.now_ms(), [issuer_id])

    await rotate_at(next_rotation_after(born) + 60_000)

    async def rotated() -> dict | None:
        jwks = await jwks_of(platform, issuer_id)
        return jwks if len(jwks.get("keys", [])) == 6 else None

    jwks = await eventually(rotated)
    assert first < {k["kid"] for k in jwks["keys"]}
    new_token = signer.sign(issuer_id, {"sub": "usr_1", "aud": "api://tests"}, alg="ES256")
    assert jwt.get_unverified_header(new_token)["kid"] not in first

    while next_rotation_after(clock.now_ms()) <= born + 44 * DAY_MS:
        await rotate_at(next_rotation_after(clock.now_ms()) + 60_000)
    clock.advance(ms=born + 44 * DAY_MS - clock.now_ms())
    assert await keys.rotate(clock.now_ms(), [issuer_id]) == {}
    assert verify(old_token, await discovered_jwks(platform, issuer_id))["sub"] == "usr_1"

    while next_rotation_after(clock.now_ms()) - born <= OVERLAP_MS:
        await rotate_at(next_rotation_after(clock.now_ms()) + 60_000)
    await rotate_at(next_rotation_after(clock.now_ms()) + 60_000)

    async def first_generation_gone() -> dict | None:
        jwks = await jwks_of(platform, issuer_id)
        return jwks if not first & {k["kid"] for k in jwks.get("keys", [])} else None

    jwks = await eventually(first_generation_gone)
    assert len(jwks["keys"]) == 6
    assert sorted(k["alg"] for k in jwks["keys"]) == sorted(ALGS * 2)
    with pytest.raises(KeyError):
        verify(old_token, jwks)


def _private_material(key) -> list[str]:
    """Every textual form the private key could leak in: PEM, DER base64, the JWK `d`."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if isinstance(key, ec.EllipticCurvePrivateKey):
        d = key.private_numbers().private_value.to_bytes(32, "big")
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        d = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    else:
        assert isinstance(key, rsa.RSAPrivateKey)
        n = key.private_numbers().d
        d = n.to_bytes((n.bit_length() + 7) // 8, "big")
    d_b64 = base64.urlsafe_b64encode(d).rstrip(b"=").decode()
    pem_body = "".join(pem.splitlines()[1:-1])
    return [pem_body[:64], base64.b64encode(der).decode()[:64], d_b64]


async def test_private_key_material_appears_in_no_event(platform, pool, issuer_id):
    entry = part(platform, "key_cache").get(issuer_id)
    assert entry is not None and set(entry.signers) == set(ALGS)
    events = await token_events(platform, pool)
    created = [data for type_, data, _ in events if type_ == "signing-key.created"]
    for signer in entry.signers.values():
        assert any(signer.kid in data for data in created)
    query = sql.SQL("SELECT kid, ciphertext, wrapped_dek FROM {}.signing_key_secrets").format(
        sql.Identifier(f"{platform.namespace}_token")
    )
    async with pool.connection() as conn:
        secrets = await (await conn.execute(query)).fetchall()
    assert {s.kid for s in entry.signers.values()} <= {row[0] for row in secrets}
    needles = [n for s in entry.signers.values() for n in _private_material(s.key)]
    needles += [value[:64] for row in secrets for value in row[1:]]
    for _, data, meta in events:
        for needle in needles:
            assert needle not in data and needle not in meta
    assert all('"d"' not in data for data in created)


async def test_unknown_issuer_is_404_in_the_idp_error_format(platform):
    async with idp(platform) as client:
        for path in [
            "/i_doesnotexist/.well-known/openid-configuration",
            "/i_doesnotexist/.well-known/oauth-authorization-server",
            "/i_doesnotexist/jwks.json",
        ]:
            resp = await client.get(path)
            assert resp.status_code == 404, path
            body = resp.json()
            assert body["error"] == "not_found" and body["error_description"]


async def test_deleted_issuer_loses_its_keys_and_endpoints(platform, pool, issuer_with_keys):
    _, issuer_id = await issuer_with_keys(platform, "Short-lived")
    async with core(platform) as client:
        resp = await client.delete(f"/v1/accounts/{platform.account_id}/issuers/{issuer_id}")
    assert resp.status_code == 204, resp.text

    async def gone() -> bool:
        async with idp(platform) as client:
            return (await client.get(f"/{issuer_id}/jwks.json")).status_code == 404

    await eventually(gone)
    query = sql.SQL("SELECT count(*) FROM {}.signing_key_secrets WHERE issuer_id = %s").format(
        sql.Identifier(f"{platform.namespace}_token")
    )
    async with pool.connection() as conn:
        assert (await (await conn.execute(query, [issuer_id])).fetchone())[0] == 0
    retired = [
        data for type_, data, _ in await token_events(platform, pool)
        if type_ == "signing-key.retired" and issuer_id in data
    ]  # fmt: skip
    assert len(retired) == 3 and all("issuer_deleted" in data for data in retired)


async def test_platform_issuer_has_keys_and_discovery(platform, jwks_of):
    """AuthPI's own issuer (console users' tokens) exists without any directory event."""
    from authpi.contracts.console import PLATFORM_ISSUER_ID

    assert len((await jwks_of(platform, PLATFORM_ISSUER_ID))["keys"]) == 3
    async with idp(platform) as client:
        resp = await client.get(f"/{PLATFORM_ISSUER_ID}/.well-known/openid-configuration")
    assert resp.status_code == 200
    assert resp.json()["issuer"] == f"{platform.idp_url}/{PLATFORM_ISSUER_ID}"


async def test_an_issuer_update_reaches_the_key_cache(platform, issuer_id):
    """An update that changes no key (here the available scopes) still reloads the cached
    issuer: discovery lists the new scope."""
    async with core(platform) as client:
        resp = await client.patch(
            f"/v1/accounts/{platform.account_id}/issuers/{issuer_id}",
            json={"available_scopes": ["invoices:read"]},
        )
    assert resp.status_code == 200, resp.text

    async def listed() -> bool:
        async with idp(platform) as client:
            doc = await client.get(f"/{issuer_id}/.well-known/openid-configuration")
        return "invoices:read" in doc.json()["scopes_supported"]

    await eventually(listed)
