"""A third-party OIDC client library against the running platform: Authlib's httpx client does
the authorization code flow with PKCE S256 from discovery on, a person signs in through the hosted
portal's HTML forms (read and posted as a browser would), the ID token is validated with joserfc
against the JWKS that discovery names (signature, iss, aud, nonce, exp, at_hash), then refresh
with rotation, userinfo and RP-initiated logout."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidClaimError
from joserfc.jwk import KeySet

from authpi.platform.testing.login import (
    PASSWORD,
    SCOPES,
    LoginTenant,
    PortalBrowser,
    login_tenant,
    new_email,
    query_of,
)


@pytest.fixture
async def tenant(platform):
    made = await login_tenant(platform, name="authlib")
    yield made
    await made.admin.close()


def relying_party(t: LoginTenant) -> AsyncOAuth2Client:
    """The public client as an Authlib application would configure it."""
    return AsyncOAuth2Client(
        client_id=t.spa_id,
        token_endpoint_auth_method="none",
        scope=" ".join(SCOPES),
        redirect_uri=t.redirect_uri,
        code_challenge_method="S256",
        timeout=30,
    )


def at_hash(access_token: str, alg: str) -> str:
    """OIDC Core 3.1.3.6: the left half of the token's hash, the hash of the signing alg."""
    digest = hashlib.sha512 if alg in ("EdDSA", "ES512", "RS512", "PS512") else hashlib.sha256
    if alg in ("ES384", "RS384", "PS384"):
        digest = hashlib.sha384
    full = digest(access_token.encode()).digest()
    return base64.urlsafe_b64encode(full[: len(full) // 2]).rstrip(b"=").decode()


def validate_id_token(
    id_token: str, keys: KeySet, meta: dict[str, Any], client_id: str, nonce: str | None
) -> dict[str, Any]:
    """Signature with the issuer's published keys, then the claims a relying party must check."""
    token = jwt.decode(id_token, keys, algorithms=meta["id_token_signing_alg_values_supported"])
    expected: dict[str, Any] = {
        "iss": {"essential": True, "value": meta["issuer"]},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    if nonce is not None:
        expected["nonce"] = {"essential": True, "value": nonce}
    jwt.JWTClaimsRegistry(leeway=5, **expected).validate(token.claims)
    return {"header": token.header, **token.claims}


async def test_authlib_code_flow_with_pkce_refresh_userinfo_and_logout(tenant: LoginTenant):
    t = tenant
    email = new_email("authlib")
    async with PortalBrowser() as first_visit:  # the person signs up on the portal first
        created = await first_visit.sign_up(t.issuer_url, email, PASSWORD, name="Ada Lovelace")
        assert created.status_code == 303, created.text
    [user] = (await t.admin.issuer(t.issuer_id).users.list()).data

    async with relying_party(t) as client, PortalBrowser() as person:
        # Discovery, and the keys it names.
        discovery = await client.request(
            "GET", f"{t.issuer_url}/.well-known/openid-configuration", withhold_token=True
        )
        meta = discovery.json()
        assert meta["issuer"] == t.issuer_url
        OpenIDProviderMetadata(meta).validate()  # OIDC Discovery 1.0, as Authlib reads it
        AuthorizationServerMetadata(meta).validate()  # RFC 8414
        assert "none" in meta["token_endpoint_auth_methods_supported"]  # public clients
        assert "S256" in meta["code_challenge_methods_supported"]
        assert "plain" not in meta["code_challenge_methods_supported"]
        jwks = (await client.request("GET", meta["jwks_uri"], withhold_token=True)).json()
        keys = KeySet.import_key_set(jwks)

        # Authorization request: Authlib makes the verifier's challenge, state and URL.
        verifier = generate_token(64)
        nonce = generate_token(24)
        url, state = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        sent = query_of(url)
        assert sent["code_challenge_method"] == "S256" and sent["code_challenge"] != verifier

        # The person signs in with the password and allows access.
        callback = await person.authorize(url, email, PASSWORD, redirect_uri=t.redirect_uri)
        visited = [urlsplit(u).path for u in person.trail]
        assert f"/{t.issuer_id}/login" in visited and f"/{t.issuer_id}/consent" in visited
        answer = query_of(callback)
        assert answer["state"] == state and answer["code"] and answer["session_state"]

        # Code exchange; Authlib checks the state of the callback.
        token = await client.fetch_token(
            meta["token_endpoint"], authorization_response=callback, state=state,
            code_verifier=verifier,
        )  # fmt: skip
        assert token["token_type"].lower() == "bearer" and token["expires_in"] > 0
        assert set(token["scope"].split()) == set(SCOPES)

        # The ID token, validated as a relying party must.
        claims = validate_id_token(token["id_token"], keys, meta, t.spa_id, nonce)
        assert claims["sub"] == user.user_id and claims["nonce"] == nonce
        assert claims["header"]["alg"] in meta["id_token_signing_alg_values_supported"]
        assert claims["header"]["kid"] in {k["kid"] for k in jwks["keys"]}
        assert claims["at_hash"] == at_hash(token["access_token"], claims["header"]["alg"])
        assert claims["exp"] > claims["iat"]
        assert claims["email"] == email and claims["name"] == "Ada Lovelace"
        with pytest.raises(InvalidClaimError):  # the checks above do bite
            validate_id_token(token["id_token"], keys, meta, t.spa_id, "another-nonce")
        with pytest.raises(InvalidClaimError):
            validate_id_token(token["id_token"], keys, meta, t.web_id, nonce)
        head, body, signature = token["id_token"].split(".")
        forged = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).replace(
            user.user_id.encode(), b"usr_someone_else"
        )
        forged_body = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
        with pytest.raises(BadSignatureError):
            validate_id_token(f"{head}.{forged_body}.{signature}", keys, meta, t.spa_id, nonce)

        # Refresh rotates the refresh token; presenting the old one again is refused.
        first_refresh = token["refresh_token"]
        rotated = await client.refresh_token(meta["token_endpoint"], refresh_token=first_refresh)
        assert rotated["refresh_token"] != first_refresh
        assert rotated["access_token"] != token["access_token"]
        refreshed_claims = validate_id_token(rotated["id_token"], keys, meta, t.spa_id, None)
        assert refreshed_claims["sub"] == user.user_id
        with pytest.raises(OAuthError) as reused:
            await client.refresh_token(meta["token_endpoint"], refresh_token=first_refresh)
        assert reused.value.error == "invalid_grant"

        # A second authorization in the same browser: a new code, new tokens.
        verifier = generate_token(64)
        nonce = generate_token(24)
        url, state = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        callback = await person.authorize(url, email, PASSWORD, redirect_uri=t.redirect_uri)
        token = await client.fetch_token(
            meta["token_endpoint"], authorization_response=callback, state=state,
            code_verifier=verifier,
        )  # fmt: skip
        claims = validate_id_token(token["id_token"], keys, meta, t.spa_id, nonce)
        rotated = await client.refresh_token(
            meta["token_endpoint"], refresh_token=token["refresh_token"]
        )

        # Userinfo with the current access token (Authlib sends it as a bearer token).
        info = await client.get(meta["userinfo_endpoint"])
        assert info.status_code == 200, info.text
        assert info.json()["sub"] == user.user_id and info.json()["email"] == email
        assert info.json()["email_verified"] is False  # the mailed link was not opened

        # RP-initiated logout from the person's browser.
        out = await person.get(
            f"{meta['end_session_endpoint']}?"
            + urlencode({"id_token_hint": token["id_token"],
                         "post_logout_redirect_uri": t.post_logout_uri, "state": "bye-42"})
        )  # fmt: skip
        assert out.status_code in (302, 303)
        assert out.headers["location"] == f"{t.post_logout_uri}?state=bye-42"
        assert person.cookie("authpi_session") is None  # the browser's session cookie is gone

        with pytest.raises(OAuthError) as after:
            await client.refresh_token(
                meta["token_endpoint"], refresh_token=rotated["refresh_token"]
            )
        assert after.value.error == "invalid_grant"
        # The browser is signed out: a new authorization asks for the password again.
        again = await person.get(url)
        assert again.status_code == 302 and "/login?flow=" in again.headers["location"]


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_confidential_client_refresh_introspect_and_revoke(
    tenant: LoginTenant, auth_method: str
):
    t = tenant
    email = new_email("authlib-web")
    async with PortalBrowser() as b:
        assert (await b.sign_up(t.issuer_url, email, PASSWORD)).status_code == 303
    meta = await t.discovery()
    assert auth_method in meta["token_endpoint_auth_methods_supported"]
    assert auth_method in meta["revocation_endpoint_auth_methods_supported"]
    async with (
        AsyncOAuth2Client(
            client_id=t.web_id, client_secret=t.web_secret, token_endpoint_auth_method=auth_method,
            revocation_endpoint_auth_method=auth_method, scope=" ".join(SCOPES),
            redirect_uri=t.redirect_uri, code_challenge_method="S256", timeout=30,
        ) as client,
        PortalBrowser() as person,
    ):  # fmt: skip
        verifier = generate_token(64)
        url, state = client.create_authorization_url(
            meta["authorization_endpoint"], code_verifier=verifier, nonce=generate_token(24)
        )
        callback = await person.authorize(url, email, PASSWORD, redirect_uri=t.redirect_uri)
        token = await client.fetch_token(
            meta["token_endpoint"], authorization_response=callback, state=state,
            code_verifier=verifier,
        )  # fmt: skip
        rotated = await client.refresh_token(
            meta["token_endpoint"], refresh_token=token["refresh_token"]
        )
        assert rotated["refresh_token"] != token["refresh_token"]

        seen = await client.introspect_token(
            meta["introspection_endpoint"], token=rotated["refresh_token"]
        )
        assert seen.status_code == 200 and seen.json()["active"] is True
        assert seen.json()["client_id"] == t.web_id

        revoked = await client.revoke_token(
            meta["revocation_endpoint"], token=rotated["refresh_token"],
            token_type_hint="refresh_token",
        )  # fmt: skip
        assert revoked.status_code == 200
        after = await client.introspect_token(
            meta["introspection_endpoint"], token=rotated["refresh_token"]
        )
        assert after.json() == {"active": False}
        with pytest.raises(OAuthError) as refused:
            await client.refresh_token(
                meta["token_endpoint"], refresh_token=rotated["refresh_token"]
            )
        assert refused.value.error == "invalid_grant"
