"""Human login end to end over HTTP: /authorize, the portal's part (Interactions, called here as
the portal does), the code exchange and refresh with the official `authpi-idp` SDK, userinfo,
logout; then each attack in its own test, and the Core API session routes through the official
`authpi-admin` SDK."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import secrets
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
import pytest_asyncio
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import ConflictError, NotFoundError
from authpi_idp import IdpClient
from authpi_idp.errors import OAuthError, RefreshError
from cryptography.hazmat.primitives.asymmetric import ec
from psycopg import sql

from authpi.platform.testing.tenants import part, schema_of
from authpi.token.endpoints.flow import Device, Outcome

SPA_CB = "https://spa.example.com/callback"
WEB_CB = "https://web.example.com/cb"
LOGOUT_CB = "https://spa.example.com/bye"


@dataclasses.dataclass
class Tenant:
    platform: Any
    admin: AuthPIAdmin
    issuer_id: str
    issuer_url: str
    spa_id: str
    web_id: str
    web_secret: str
    user_id: str
    interactions: Any

    def sdk(self, *, web: bool = False, redirect_uri: str | None = None) -> IdpClient:
        return IdpClient(
            issuer_url=self.issuer_url,
            client_id=self.web_id if web else self.spa_id,
            client_secret=self.web_secret if web else None,
            redirect_uri=redirect_uri or (WEB_CB if web else SPA_CB),
        )


async def make_issuer(platform: Any, admin_of: Any) -> Tenant:
    """A new issuer with an SPA and a web client; no user yet (`with_new_user`)."""
    admin = admin_of(platform)
    issuer = await admin.issuers.create({"name": f"login-{uuid.uuid4().hex[:8]}"})
    scope = admin.issuer(issuer.id)
    spa = await scope.clients.create(
        {
            "name": "Single page app", "type": "spa",
            "settings": {
                "redirect_uris": [SPA_CB, "http://127.0.0.1/native"],
                "post_logout_redirect_uris": [LOGOUT_CB],
                "scopes": ["openid", "profile", "email"],
            },
        }
    )  # fmt: skip
    web = await scope.clients.create(
        {"name": "Web app", "type": "web", "settings": {"redirect_uris": [WEB_CB]}}
    )
    return Tenant(
        platform=platform, admin=admin, issuer_id=issuer.id,
        issuer_url=f"{platform.idp_url}/{issuer.id}", spa_id=spa.id, web_id=web.id,
        web_secret=web.secret, user_id="", interactions=part(platform, "interactions", "token"),
    )  # fmt: skip


async def with_new_user(t: Tenant) -> Tenant:
    """The issuer and clients of `t` with a new user of that issuer."""
    user = await t.admin.issuer(t.issuer_id).users.create(
        {
            "username_type": "email", "username": f"u-{uuid.uuid4().hex[:8]}@example.com",
            "profile": {"first_name": "Grace", "last_name": "Hopper"},
        }
    )  # fmt: skip
    return dataclasses.replace(t, user_id=user.id)


async def make_tenant(platform: Any, admin_of: Any) -> Tenant:
    return await with_new_user(await make_issuer(platform, admin_of))


@pytest_asyncio.fixture(scope="module")
async def issuer(platform, admin_of):
    """One issuer and its two clients for the module: no test changes them."""
    made = await make_issuer(platform, admin_of)
    yield made
    await made.admin.close()


@pytest.fixture
async def tenant(issuer: Tenant) -> Tenant:
    """A new user of the module's issuer: what a test changes (its sessions, consents,
    memberships, status) is that user's own."""
    return await with_new_user(issuer)


async def authorize(url: str, cookie: str | None = None) -> httpx.Response:
    cookies = {"authpi_session": cookie} if cookie else None
    async with httpx.AsyncClient(timeout=30, cookies=cookies) as http:
        return await http.get(url, follow_redirects=False)


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def sign_in(
    t: Tenant, url: str, *, user_id: str | None = None, cookie: str | None = None
) -> tuple[dict[str, str], str | None]:
    """Drive one authorization as a browser and the portal would: /authorize, then (if the
    login page is asked for) authenticate, then (if asked) consent. (callback query, cookie)."""
    resp = await authorize(url, cookie)
    assert resp.status_code == 302, resp.text
    location = resp.headers["location"]
    if "/login?" in location:
        flow = await t.interactions.flow(t.issuer_id, query(location)["flow"])
        outcome: Outcome = await t.interactions.authenticated(
            flow, user_id=user_id or t.user_id, method="password",
            device=Device(user_agent="pytest", ip="127.0.0.1"), cookie=cookie,
        )  # fmt: skip
        cookie = outcome.set_cookie or cookie
        location = outcome.redirect
        if "/consent?" in location:
            outcome = await t.interactions.consented(
                flow, user_id=user_id or t.user_id, granted=True, cookie=cookie
            )
            location = outcome.redirect
    return query(location), cookie


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def raw_url(t: Tenant, **params: str) -> str:
    return f"{t.issuer_url}/authorize?{urlencode(params)}"


async def token(t: Tenant, data: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(f"{t.issuer_url}/token", data=data)


async def introspect(t: Tenant, tok: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(
            f"{t.issuer_url}/introspect",
            data={"token": tok, "client_id": t.web_id, "client_secret": t.web_secret},
        )
    return resp.json()


async def login_with_sdk(t: Tenant, *, web: bool = False, **kw: Any) -> tuple[IdpClient, Any, str]:
    sdk = t.sdk(web=web)
    auth = sdk.create_authorization_url(scopes=["openid", "profile", "email"], **kw)
    callback, cookie = await sign_in(t, auth.url)
    agent = await sdk.exchange_callback(urlencode(callback), auth)
    assert cookie is not None
    return sdk, agent, cookie


async def test_login_refresh_userinfo_logout(tenant: Tenant):
    t = tenant
    sdk = t.sdk()
    auth = sdk.create_authorization_url(scopes=["openid", "profile", "email"])
    first = await authorize(auth.url)
    assert first.status_code == 302
    assert first.headers["location"].startswith(f"{t.issuer_url}/login?flow=flw_")
    callback, cookie = await sign_in(t, auth.url)
    assert callback["state"] == auth.state and "session_state" in callback
    assert cookie is not None and cookie.startswith("s_")

    agent = await sdk.exchange_callback(urlencode(callback), auth)  # checks the nonce too
    assert agent.id == t.user_id
    idt, at, rt = (claims(agent.tokens.id_token), claims(agent.tokens.access_token),
                   claims(agent.tokens.refresh_token))  # fmt: skip
    assert idt["nonce"] == auth.nonce and idt["aud"] == idt["azp"] == t.spa_id
    assert idt["sid"] == at["sid"] == rt["sid"] and idt["sid"].startswith("s_")
    assert idt["name"] == "Grace Hopper" and idt["organizations"] == []
    assert "at_hash" in idt and abs(idt["auth_time"] - idt["iat"]) <= 5
    assert jwt.get_unverified_header(agent.tokens.id_token).get("typ") is None
    assert jwt.get_unverified_header(agent.tokens.refresh_token).get("typ") is None
    assert jwt.get_unverified_header(agent.tokens.access_token)["typ"] == "at+jwt"
    assert at["dat"] == {"type": "identity"} and at["auth_time"] == at["iat"]
    assert rt["scope"] == "openid profile email" and "fid" in rt and "auth_time" not in rt
    assert rt["exp"] - rt["iat"] <= 7 * 86400

    refreshed = await sdk.refresh(agent)
    assert refreshed.id == t.user_id
    assert refreshed.tokens.refresh_token != agent.tokens.refresh_token
    assert claims(refreshed.tokens.id_token)["auth_time"] == idt["auth_time"]
    assert "nonce" not in claims(refreshed.tokens.id_token)
    narrowed = await token(t, {"grant_type": "refresh_token", "client_id": t.spa_id,
                               "refresh_token": refreshed.tokens.refresh_token,
                               "scope": "openid"})  # fmt: skip
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "openid"
    assert claims(narrowed.json()["refresh_token"])["scope"] == "openid profile email"
    wider = await token(t, {"grant_type": "refresh_token", "client_id": t.spa_id,
                            "refresh_token": narrowed.json()["refresh_token"],
                            "scope": "openid phone"})  # fmt: skip
    assert wider.json()["error"] == "invalid_scope"

    info = await sdk.get_user_info(refreshed)
    assert info.sub == t.user_id and info.given_name == "Grace"

    session = await t.admin.issuer(t.issuer_id).sessions.get(idt["sid"])
    assert session.type == "rp" and session.status == "active" and session.refresh_count == 2
    assert session.client and session.client["id"] == t.spa_id

    # SSO: the browser's op session signs in again without the login page.
    auth2 = sdk.create_authorization_url(scopes=["openid", "profile", "email"])
    again = await authorize(auth2.url, cookie)
    assert again.status_code == 302 and "code" in query(again.headers["location"])

    async with httpx.AsyncClient(timeout=30) as http:
        out = await http.get(
            f"{t.issuer_url}/logout",
            params={"id_token_hint": agent.tokens.id_token, "post_logout_redirect_uri": LOGOUT_CB,
                    "state": "bye-1"},
        )  # fmt: skip
    assert out.status_code == 302 and out.headers["location"] == f"{LOGOUT_CB}?state=bye-1"
    assert "authpi_session=;" in out.headers["set-cookie"]
    assert "Max-Age=0" in out.headers["set-cookie"]
    with pytest.raises(RefreshError):
        await sdk.refresh(refreshed)
    with pytest.raises(OAuthError):
        await sdk.get_user_info(refreshed)
    op = await t.admin.issuer(t.issuer_id).sessions.get(session.op_session_id)
    assert op.status == "revoked" and op.revoked_reason == "logout"
    after = await authorize(auth2.url, cookie)  # the op session is gone
    assert "/login?flow=" in after.headers["location"]
    await sdk.close()


async def test_prompt_none_without_a_session_is_login_required(tenant: Tenant):
    _, challenge = pkce()
    resp = await authorize(raw_url(
        tenant, client_id=tenant.spa_id, redirect_uri=SPA_CB, response_type="code",
        scope="openid", state="s1", code_challenge=challenge, code_challenge_method="S256",
        prompt="none",
    ))  # fmt: skip
    got = query(resp.headers["location"])
    assert resp.headers["location"].startswith(SPA_CB)
    assert (got["error"], got["state"]) == ("login_required", "s1")


async def test_missing_pkce_and_plain_pkce_are_refused(tenant: Tenant):
    base = {"client_id": tenant.spa_id, "redirect_uri": SPA_CB, "response_type": "code",
            "scope": "openid", "state": "s2"}  # fmt: skip
    missing = await authorize(raw_url(tenant, **base))
    assert query(missing.headers["location"])["error"] == "invalid_request"
    _, challenge = pkce()
    plain = await authorize(raw_url(tenant, **base, code_challenge=challenge,
                                    code_challenge_method="plain"))  # fmt: skip
    got = query(plain.headers["location"])
    assert (got["error"], got["state"]) == ("invalid_request", "s2")


async def test_wrong_code_verifier_is_invalid_grant(tenant: Tenant):
    verifier, challenge = pkce()
    url = raw_url(
        tenant,
        client_id=tenant.spa_id,
        redirect_uri=SPA_CB,
        response_type="code",
        scope="openid",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    callback, _ = await sign_in(tenant, url)
    wrong = await token(tenant, {"grant_type": "authorization_code", "code": callback["code"],
                                 "redirect_uri": SPA_CB, "client_id": tenant.spa_id,
                                 "code_verifier": pkce()[0]})  # fmt: skip
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    right = await token(tenant, {"grant_type": "authorization_code", "code": callback["code"],
                                 "redirect_uri": SPA_CB, "client_id": tenant.spa_id,
                                 "code_verifier": verifier})  # fmt: skip
    assert right.status_code == 200  # a failed check does not burn the code


async def test_redirect_uri_off_by_one_character(tenant: Tenant):
    _, challenge = pkce()
    page = await authorize(raw_url(
        tenant, client_id=tenant.spa_id, redirect_uri=SPA_CB + "x", response_type="code",
        scope="openid", code_challenge=challenge, code_challenge_method="S256",
    ))  # fmt: skip
    assert page.status_code == 400 and "location" not in page.headers
    assert page.headers["content-type"].startswith("text/html")
    # At /token, the URI must be the identical string.
    verifier, challenge = pkce()
    callback, _ = await sign_in(tenant, raw_url(
        tenant, client_id=tenant.spa_id, redirect_uri=SPA_CB, response_type="code",
        scope="openid", code_challenge=challenge, code_challenge_method="S256",
    ))  # fmt: skip
    resp = await token(tenant, {"grant_type": "authorization_code", "code": callback["code"],
                                "redirect_uri": SPA_CB[:-1], "client_id": tenant.spa_id,
                                "code_verifier": verifier})  # fmt: skip
    assert resp.json()["error"] == "invalid_grant"


async def test_loopback_redirect_with_any_port(tenant: Tenant):
    verifier, challenge = pkce()
    native = "http://127.0.0.1:53117/native"
    callback, _ = await sign_in(tenant, raw_url(
        tenant, client_id=tenant.spa_id, redirect_uri=native, response_type="code",
        scope="openid", code_challenge=challenge, code_challenge_method="S256",
    ))  # fmt: skip
    resp = await token(tenant, {"grant_type": "authorization_code", "code": callback["code"],
                                "redirect_uri": native, "client_id": tenant.spa_id,
                                "code_verifier": verifier})  # fmt: skip
    assert resp.status_code == 200


async def test_code_replay_revokes_the_first_tokens(tenant: Tenant, pool):
    sdk = tenant.sdk(web=True)
    auth = sdk.create_authorization_url(scopes=["openid", "profile"])
    callback, _ = await sign_in(tenant, auth.url)
    agent = await sdk.exchange_callback(urlencode(callback), auth)
    assert (await introspect(tenant, agent.tokens.access_token))["active"] is True
    with pytest.raises(OAuthError) as replay:
        await sdk.exchange_code(callback["code"], auth.code_verifier)
    assert replay.value.error == "invalid_grant"
    assert (await introspect(tenant, agent.tokens.access_token)) == {"active": False}
    assert (await introspect(tenant, agent.tokens.refresh_token)) == {"active": False}
    with pytest.raises(RefreshError):
        await sdk.refresh(agent)
    sid = claims(agent.tokens.access_token)["sid"]
    session = await tenant.admin.issuer(tenant.issuer_id).sessions.get(sid)
    assert session.status == "revoked" and session.compromised_reason == "code_reuse"
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL(
                "SELECT count(*) FROM {}.events WHERE type = 'auth.flow.replay-attempt'"
                " AND data->>'issuer_id' = %s AND data->>'artifact' = 'code'"
            ).format(schema_of(tenant.platform, "token")),
            [tenant.issuer_id],
        )
        assert (await cur.fetchone()) == (1,)
    await sdk.close()


async def test_refresh_reuse_revokes_the_family_and_session(tenant: Tenant):
    sdk, agent, _ = await login_with_sdk(tenant)
    rotated = await sdk.refresh(agent)
    with pytest.raises(RefreshError) as reuse:
        await sdk.refresh(agent)  # the first refresh token again
    assert reuse.value.error == "invalid_grant"
    with pytest.raises(RefreshError):
        await sdk.refresh(rotated)  # the family is over
    session = await tenant.admin.issuer(tenant.issuer_id).sessions.get(
        claims(agent.tokens.access_token)["sid"]
    )
    assert session.status == "revoked" and session.compromised
    assert session.compromised_reason == "refresh_token_reuse"
    await sdk.close()


def forged(refresh_token: str, **changes: Any) -> str:
    """The token's header and claims (with `changes`) signed by a key that is not the issuer's,
    under the issuer's `kid`: what an attacker who read a refresh token can make of it."""
    header = jwt.get_unverified_header(refresh_token)
    body = claims(refresh_token) | changes
    attacker = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(body, attacker, algorithm="ES256", headers={"kid": header["kid"]})


def nested(token_: str) -> str:
    """The token with its claims replaced by 2,500 nested arrays (under 8 KiB in all)."""
    head, _, rest = token_.partition(".")
    deep = base64.urlsafe_b64encode(b"[" * 2500 + b"]" * 2500).rstrip(b"=").decode()
    return f"{head}.{deep}.{rest.rpartition('.')[2]}"


async def family_digest(tenant: Tenant, pool: Any, family_id: str) -> str | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT current_sha256 FROM {}.refresh_families WHERE id = %s").format(
                schema_of(tenant.platform, "token")
            ),
            [family_id],
        )
        row = await cur.fetchone()
    assert row is not None
    return row[0]


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def test_forged_refresh_tokens_are_refused_and_end_nothing(tenant: Tenant, pool):
    """The family records the digest of its current token as issued, and only that exact token
    skips the signature check: a re-signed copy of the current token, one with a wider scope,
    or an older generation's token re-signed (which, genuine, would be a replay that ends the
    family) are all refused as invalid, and the family and its session go on."""
    sdk, agent, _ = await login_with_sdk(tenant)
    first = agent.tokens.refresh_token
    fid = claims(first)["fid"]
    assert await family_digest(tenant, pool, fid) == sha256_hex(first)
    rotated = await sdk.refresh(agent)
    current = rotated.tokens.refresh_token
    assert await family_digest(tenant, pool, fid) == sha256_hex(current)
    for fake in (
        forged(current),
        forged(current, scope="openid profile email offline_access admin"),
        forged(first),  # the rotated generation: a replay if it were genuine
        current[:-4] + ("AAAA" if not current.endswith("AAAA") else "BBBB"),
        nested(current),  # claims nested deeper than the JSON decoder goes
    ):
        resp = await token(tenant, {"grant_type": "refresh_token", "client_id": tenant.spa_id,
                                    "refresh_token": fake})  # fmt: skip
        assert resp.status_code == 400, resp.text
        assert resp.json() == {"error": "invalid_grant",
                               "error_description": "Refresh token expired or invalid"}  # fmt: skip
    assert await introspect(tenant, nested(current)) == {"active": False}
    session = await tenant.admin.issuer(tenant.issuer_id).sessions.get(claims(current)["sid"])
    assert session.status == "active" and not session.compromised
    # Forgeries whose ids hold a NUL (which PostgreSQL's JSON refuses), sent with the genuine
    # current token: they are refused before the shared rotation, which goes on for the genuine.
    nul = [forged(current, sub="u\x00"), forged(current, fid=fid + "\x00"),
           forged(current, jti="j\x00"), forged(current, org_id="org_\x00")]  # fmt: skip
    again, *refused = await asyncio.gather(
        sdk.refresh(rotated),
        *(token(tenant, {"grant_type": "refresh_token", "client_id": tenant.spa_id,
                         "refresh_token": fake}) for fake in nul),
    )  # fmt: skip
    assert [r.status_code for r in refused] == [400] * len(nul)
    assert all(r.json()["error"] == "invalid_grant" for r in refused)
    assert claims(again.tokens.refresh_token)["fid"] == fid
    await sdk.close()


async def test_a_family_without_a_recorded_digest_is_proven_by_signature(tenant: Tenant, pool):
    """A family whose current digest is not recorded (started before digests were) refreshes
    on its token's signature and records the next token's digest; a forgery of its current
    token is refused."""
    sdk, agent, _ = await login_with_sdk(tenant)
    fid = claims(agent.tokens.refresh_token)["fid"]
    async with pool.connection() as conn:
        await conn.execute(
            sql.SQL("UPDATE {}.refresh_families SET current_sha256 = NULL WHERE id = %s").format(
                schema_of(tenant.platform, "token")
            ),
            [fid],
        )
    resp = await token(tenant, {"grant_type": "refresh_token", "client_id": tenant.spa_id,
                                "refresh_token": forged(agent.tokens.refresh_token)})  # fmt: skip
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    rotated = await sdk.refresh(agent)
    assert await family_digest(tenant, pool, fid) == sha256_hex(rotated.tokens.refresh_token)
    await sdk.close()


async def six_uses_one_wins(tenant: Tenant, refresh_token: str) -> tuple[dict[str, str], str]:
    """Six concurrent refreshes with `refresh_token`: exactly one wins, five are invalid_grant.
    The grant's form and the winner's new refresh token."""
    data = {"grant_type": "refresh_token", "client_id": tenant.spa_id,
            "refresh_token": refresh_token}  # fmt: skip
    results = await asyncio.gather(*(token(tenant, data) for _ in range(6)))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 400, 400, 400, 400, 400]
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code == 400)
    return data, next(r for r in results if r.status_code == 200).json()["refresh_token"]


async def test_concurrent_refreshes_of_one_token_exactly_one_wins(tenant: Tenant):
    sdk, agent, _ = await login_with_sdk(tenant)
    await six_uses_one_wins(tenant, agent.tokens.refresh_token)
    await sdk.close()


async def test_concurrent_refreshes_of_a_later_token_exactly_one_wins(tenant: Tenant):
    # A later generation's token stream is empty while the family names it current, and is not
    # loaded: its concurrent uses still meet on the stream's first version.
    sdk, agent, _ = await login_with_sdk(tenant)
    for _ in range(2):
        agent = await sdk.refresh(agent)
    data, won = await six_uses_one_wins(tenant, agent.tokens.refresh_token)
    again = await token(tenant, {**data, "refresh_token": won})
    assert again.json()["error"] == "invalid_grant"  # the replays ended the family
    await sdk.close()


async def test_concurrent_refreshes_of_many_families_with_a_replay_among_them(tenant: Tenant):
    # Rotations that arrive together share a transaction (a group commit): each still rotates
    # its own family, and the replay among them ends only its own family and session.
    logins = [await login_with_sdk(tenant) for _ in range(8)]
    old = logins[0][1].tokens.refresh_token
    current = []
    for _, agent, _ in logins:
        current.append((await logins[0][0].refresh(agent)).tokens.refresh_token)

    def grant(refresh: str) -> dict[str, str]:
        return {"grant_type": "refresh_token", "client_id": tenant.spa_id, "refresh_token": refresh}

    results = await asyncio.gather(*(token(tenant, grant(r)) for r in [old, *current[1:]]))
    assert results[0].json()["error"] == "invalid_grant"
    assert [r.status_code for r in results[1:]] == [200] * 7
    rotated = [r.json()["refresh_token"] for r in results[1:]]
    assert len(set(rotated) | set(current)) == 7 + 8
    again = await asyncio.gather(*(token(tenant, grant(r)) for r in [current[0], *rotated]))
    assert again[0].json()["error"] == "invalid_grant"  # its family ended with the replay
    assert [r.status_code for r in again[1:]] == [200] * 7
    session = await tenant.admin.issuer(tenant.issuer_id).sessions.get(
        claims(logins[0][1].tokens.access_token)["sid"]
    )
    assert session.status == "revoked" and session.compromised_reason == "refresh_token_reuse"
    for sdk, _, _ in logins:
        await sdk.close()


async def test_cross_issuer_code_and_refresh_are_refused(platform, admin_of, tenant: Tenant):
    other = await make_tenant(platform, admin_of)
    verifier, challenge = pkce()
    callback, _ = await sign_in(tenant, raw_url(
        tenant, client_id=tenant.spa_id, redirect_uri=SPA_CB, response_type="code",
        scope="openid", code_challenge=challenge, code_challenge_method="S256",
    ))  # fmt: skip
    stolen = await token(other, {"grant_type": "authorization_code", "code": callback["code"],
                                 "redirect_uri": SPA_CB, "client_id": other.spa_id,
                                 "code_verifier": verifier})  # fmt: skip
    assert stolen.json()["error"] == "invalid_grant"
    own = await token(tenant, {"grant_type": "authorization_code", "code": callback["code"],
                               "redirect_uri": SPA_CB, "client_id": tenant.spa_id,
                               "code_verifier": verifier})  # fmt: skip
    assert own.status_code == 200
    refresh = own.json()["refresh_token"]
    elsewhere = await token(other, {"grant_type": "refresh_token", "client_id": other.spa_id,
                                    "refresh_token": refresh})  # fmt: skip
    assert elsewhere.json()["error"] == "invalid_grant"
    still = await token(tenant, {"grant_type": "refresh_token", "client_id": tenant.spa_id,
                                 "refresh_token": refresh})  # fmt: skip
    assert still.status_code == 200
    await other.admin.close()


async def test_logout_never_redirects_to_an_unregistered_uri(tenant: Tenant):
    sdk, agent, _ = await login_with_sdk(tenant)
    async with httpx.AsyncClient(timeout=30) as http:
        evil = await http.get(
            f"{tenant.issuer_url}/logout",
            params={"id_token_hint": agent.tokens.id_token,
                    "post_logout_redirect_uri": "https://evil.example.com/bye"},
        )  # fmt: skip
        assert evil.status_code == 400 and "location" not in evil.headers
        missing = await http.get(f"{tenant.issuer_url}/logout")
        assert missing.status_code == 400
        plain = await http.get(
            f"{tenant.issuer_url}/logout", params={"id_token_hint": agent.tokens.id_token}
        )
    assert plain.status_code == 302
    # The hosted signed-out page, naming the client so it can offer the client's own registered
    # post-logout destination; never anything taken from the request.
    assert plain.headers["location"] == (
        f"{tenant.issuer_url}/signed-out?client_id={claims(agent.tokens.id_token)['aud']}"
    )
    await sdk.close()


async def test_session_revoke_stops_refresh_at_once(tenant: Tenant):
    sdk, agent, _ = await login_with_sdk(tenant)
    sid = claims(agent.tokens.access_token)["sid"]
    revoked = await tenant.admin.issuer(tenant.issuer_id).sessions.revoke(sid, {"reason": "test"})
    assert revoked.status == "revoked" and revoked.revoked_reason == "test"
    with pytest.raises(RefreshError) as refused:
        await sdk.refresh(agent)
    assert refused.value.error == "invalid_grant"
    await sdk.close()


async def member_of(t: Tenant, *names: str) -> list[str]:
    """New organizations of the tenant's issuer with the user as an active member."""
    scope = t.admin.issuer(t.issuer_id)
    ids = []
    for name in names:
        org = await scope.organizations.create({"name": name, "scopes": ["member"]})
        await scope.organization(org.id).members.create(
            {"member_id": t.user_id, "scopes": ["member"]}
        )
        ids.append(org.id)
    return ids


def org_ids(token_: str) -> list[str]:
    return sorted(o["id"] for o in claims(token_)["organizations"])


async def test_a_suspended_membership_is_left_out(tenant: Tenant):
    active, paused = await member_of(tenant, "Active", "Paused")
    scope = tenant.admin.issuer(tenant.issuer_id)
    await scope.organization(paused).members.update(tenant.user_id, {"status": "suspended"})
    sdk, agent, _ = await login_with_sdk(tenant)
    assert org_ids(agent.tokens.access_token) == [active]
    assert org_ids(agent.tokens.id_token) == [active]
    assert [o.id for o in (await sdk.get_user_info(agent)).organizations or []] == [active]
    await sdk.close()


async def test_org_suspension_removes_the_org_at_the_next_refresh(tenant: Tenant):
    acme, beta = await member_of(tenant, "Acme", "Beta")
    sdk, agent, _ = await login_with_sdk(tenant)
    assert org_ids(agent.tokens.access_token) == sorted([acme, beta])
    await tenant.admin.issuer(tenant.issuer_id).organizations.update(beta, {"status": "suspended"})
    refreshed = await sdk.refresh(agent)
    assert org_ids(refreshed.tokens.access_token) == [acme]
    assert org_ids(refreshed.tokens.id_token) == [acme]
    assert "organizations" not in claims(refreshed.tokens.refresh_token)
    assert [o.id for o in (await sdk.get_user_info(refreshed)).organizations or []] == [acme]
    await sdk.close()


async def test_a_selected_org_token_carries_only_that_org(tenant: Tenant):
    acme, _beta, gamma = await member_of(tenant, "Acme", "Beta", "Gamma")
    scope = tenant.admin.issuer(tenant.issuer_id)
    await scope.organization(gamma).members.update(tenant.user_id, {"status": "suspended"})
    sdk, _, cookie = await login_with_sdk(tenant)
    auth = sdk.create_authorization_url(scopes=["openid", "profile", "email"], org=acme)
    callback, _ = await sign_in(tenant, auth.url, cookie=cookie)
    selected = await sdk.exchange_callback(urlencode(callback), auth)
    at = claims(selected.tokens.access_token)
    assert at["org_id"] == acme and org_ids(selected.tokens.access_token) == [acme]
    assert claims(selected.tokens.id_token)["org_id"] == acme
    assert claims(selected.tokens.refresh_token)["org_id"] == acme  # the marker only
    again = await sdk.refresh(selected)
    assert claims(again.tokens.access_token)["org_id"] == acme
    assert org_ids(again.tokens.access_token) == [acme]
    info = await sdk.get_user_info(again)
    assert info.org_id == acme and [o.id for o in info.organizations or []] == [acme]
    # an org the user is not an active member of: access_denied after login
    denied = sdk.create_authorization_url(scopes=["openid"], org=gamma)
    callback, _ = await sign_in(tenant, denied.url, cookie=cookie)
    assert callback["error"] == "access_denied" and callback["state"] == denied.state
    # the selected org suspended later: refresh goes on, with no organization (14 #13)
    await scope.organizations.update(acme, {"status": "suspended"})
    later = await sdk.refresh(again)
    assert claims(later.tokens.access_token)["org_id"] == acme
    assert org_ids(later.tokens.access_token) == []
    await sdk.close()


async def test_core_api_session_routes(tenant: Tenant):
    sdk, agent, _ = await login_with_sdk(tenant)
    scope = tenant.admin.issuer(tenant.issuer_id)
    sid = claims(agent.tokens.access_token)["sid"]
    rp = await scope.sessions.get(sid)
    listed = await scope.user(tenant.user_id).sessions.list()
    assert {s.id for s in listed.data} == {sid, rp.op_session_id}
    assert [
        s.id for s in (await scope.user(tenant.user_id).sessions.list(status="revoked")).data
    ] == []

    suspended = await scope.sessions.suspend(sid, {"reason": "investigation"})
    assert suspended.status == "suspended" and suspended.status_reason == "investigation"
    with pytest.raises(RefreshError):
        await sdk.refresh(agent)  # a suspended session does not refresh
    assert (await scope.sessions.reactivate(sid)).status == "active"
    refreshed = await sdk.refresh(agent)

    revoked = await scope.sessions.revoke(rp.op_session_id)  # the op session: cascade
    assert revoked.status == "revoked"
    assert (await scope.sessions.get(sid)).status == "revoked"
    again = await scope.sessions.revoke(rp.op_session_id)
    assert again.status == "revoked"  # unchanged, 200
    with pytest.raises(ConflictError):
        await scope.sessions.reactivate(sid)
    with pytest.raises(RefreshError):
        await sdk.refresh(refreshed)
    with pytest.raises(NotFoundError):
        await scope.sessions.get("s_doesnotexist")
    await sdk.close()


async def test_consent_withdrawal(tenant: Tenant):
    sdk, agent, cookie = await login_with_sdk(tenant)
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.delete(
            f"{tenant.issuer_url}/consents/{tenant.spa_id}",
            headers={"Authorization": f"Bearer {agent.tokens.access_token}"},
        )
        assert resp.status_code == 200 and resp.json() == {"revoked": True}
        anonymous = await http.delete(f"{tenant.issuer_url}/consents/{tenant.spa_id}")
        assert anonymous.status_code == 401
    with pytest.raises(RefreshError):
        await sdk.refresh(agent)  # no silent renewal
    auth = sdk.create_authorization_url(scopes=["openid", "profile", "email"])
    resp = await authorize(auth.url, cookie)
    assert "/consent?flow=" in resp.headers["location"]  # asked again
    await sdk.close()


async def test_check_session(tenant: Tenant):
    sdk = tenant.sdk()
    auth = sdk.create_authorization_url(scopes=["openid"])
    callback, cookie = await sign_in(tenant, auth.url)
    body = {"client_id": tenant.spa_id, "session_state": callback["session_state"],
            "origin": "https://spa.example.com"}  # fmt: skip
    async with httpx.AsyncClient(timeout=30) as http:
        page = await http.get(f"{tenant.issuer_url}/check-session.html")
        assert page.status_code == 200 and "postMessage" in page.text
        valid = await http.post(f"{tenant.issuer_url}/check-session", json=body,
                                cookies={"authpi_session": cookie or ""})  # fmt: skip
        assert valid.json() == {"valid": True}
        nobody = await http.post(f"{tenant.issuer_url}/check-session", json=body)
        assert nobody.json() == {"valid": False}
        probe = await http.post(f"{tenant.issuer_url}/check-session",
                                json={**body, "origin": "https://evil.example.com"},
                                cookies={"authpi_session": cookie or ""})  # fmt: skip
        assert probe.status_code == 403
    await sdk.close()


async def test_revoking_a_refresh_token_ends_its_family(tenant: Tenant):
    sdk, agent, _ = await login_with_sdk(tenant)  # a public client revokes by its id
    rotated = await sdk.refresh(agent)
    await sdk.revoke_token(rotated.tokens.refresh_token, "refresh_token")
    with pytest.raises(RefreshError):
        await sdk.refresh(rotated)
    # Introspection (a confidential client's, of its own tokens): a web login's refresh token
    # is active, then not once revoked; the access token stays active until `exp`.
    web, web_agent, _ = await login_with_sdk(tenant, web=True)
    refresh_info = await introspect(tenant, web_agent.tokens.refresh_token)
    assert refresh_info["active"] is True and refresh_info["token_type"] == "refresh_token"
    assert refresh_info["sid"] == claims(web_agent.tokens.access_token)["sid"]
    assert (await introspect(tenant, web_agent.tokens.id_token)) == {"active": False}
    await web.revoke_token(web_agent.tokens.refresh_token)
    assert (await introspect(tenant, web_agent.tokens.refresh_token)) == {"active": False}
    assert (await introspect(tenant, web_agent.tokens.access_token))["active"] is True
    await sdk.close()
    await web.close()


async def test_userinfo_errors(tenant: Tenant):
    sdk, agent, _ = await login_with_sdk(tenant)
    async with httpx.AsyncClient(timeout=30) as http:
        none = await http.get(f"{tenant.issuer_url}/userinfo")
        assert none.status_code == 401 and none.json()["error"] == "invalid_token"
        assert none.headers["www-authenticate"].startswith("Bearer ")
        garbage = await http.get(
            f"{tenant.issuer_url}/userinfo", headers={"Authorization": "Bearer abc"}
        )
        assert garbage.status_code == 401
        # an ID or refresh token is no access token
        idt = await http.get(
            f"{tenant.issuer_url}/userinfo",
            headers={"Authorization": f"Bearer {agent.tokens.id_token}"},
        )
        assert idt.status_code == 401
        narrowed = await token(tenant, {"grant_type": "refresh_token", "client_id": tenant.spa_id,
                                        "refresh_token": agent.tokens.refresh_token,
                                        "scope": "profile"})  # fmt: skip
        no_openid = await http.get(
            f"{tenant.issuer_url}/userinfo",
            headers={"Authorization": f"Bearer {narrowed.json()['access_token']}"},
        )
        assert no_openid.status_code == 403 and no_openid.json()["error"] == "insufficient_scope"
        post = await http.post(
            f"{tenant.issuer_url}/userinfo", data={"access_token": agent.tokens.access_token}
        )
        assert post.status_code == 200 and post.json()["sub"] == tenant.user_id
    await sdk.close()


async def test_a_user_no_longer_active_loses_refresh_userinfo_and_introspection(tenant: Tenant):
    web, agent, _ = await login_with_sdk(tenant, web=True)
    assert (await introspect(tenant, agent.tokens.access_token))["active"] is True
    await tenant.admin.issuer(tenant.issuer_id).users.update(
        tenant.user_id, {"status": "suspended"}
    )
    assert (await introspect(tenant, agent.tokens.access_token)) == {"active": False}
    with pytest.raises(OAuthError):
        await web.get_user_info(agent)
    with pytest.raises(RefreshError) as refused:
        await web.refresh(agent)
    assert refused.value.error == "invalid_grant"
    await web.close()


async def test_concurrent_exchanges_of_one_code_issue_once(tenant: Tenant):
    verifier, challenge = pkce()
    callback, _ = await sign_in(tenant, raw_url(
        tenant, client_id=tenant.spa_id, redirect_uri=SPA_CB, response_type="code",
        scope="openid", code_challenge=challenge, code_challenge_method="S256",
    ))  # fmt: skip
    data = {"grant_type": "authorization_code", "code": callback["code"], "redirect_uri": SPA_CB,
            "client_id": tenant.spa_id, "code_verifier": verifier}  # fmt: skip
    results = await asyncio.gather(*(token(tenant, data) for _ in range(4)))
    won = [r for r in results if r.status_code == 200]
    assert len(won) == 1
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code != 200)
    rt = won[0].json()["refresh_token"]  # the replays revoked what the winner got
    refresh = await token(
        tenant, {"grant_type": "refresh_token", "client_id": tenant.spa_id, "refresh_token": rt}
    )
    assert refresh.json()["error"] == "invalid_grant"


async def code_for(t: Tenant, cookie: str | None, challenge: str) -> tuple[str, str | None]:
    """A code of the SPA client for `t`'s user (signing in when there is no cookie yet)."""
    callback, cookie = await sign_in(t, raw_url(
        t, client_id=t.spa_id, redirect_uri=SPA_CB, response_type="code", scope="openid",
        code_challenge=challenge, code_challenge_method="S256",
    ), cookie=cookie)  # fmt: skip
    return callback["code"], cookie


def exchange_of(t: Tenant, code: str, verifier: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": SPA_CB,
            "client_id": t.spa_id, "code_verifier": verifier}  # fmt: skip


async def test_concurrent_exchanges_of_many_codes_with_a_replay_among_them(issuer: Tenant):
    # Exchanges that arrive together share a transaction (a group commit), those of one user
    # in turn: each opens its own session, and the code presented twice issues once.
    verifier, challenge = pkce()
    users = [await with_new_user(issuer) for _ in range(2)]
    codes: list[tuple[Tenant, str]] = []
    for user in users:
        cookie = None
        for _ in range(4):
            code, cookie = await code_for(user, cookie, challenge)
            codes.append((user, code))
    twice = codes[0]
    results = await asyncio.gather(
        *(token(u, exchange_of(u, code, verifier)) for u, code in [*codes, twice])
    )
    first, again = results[0], results[-1]
    assert sorted([first.status_code, again.status_code]) == [200, 400]
    assert [r.status_code for r in results[1:-1]] == [200] * 7
    sids = {claims(r.json()["id_token"])["sid"] for r in results[1:-1]}
    assert len(sids) == 7
    for (user, _), r in zip(codes[1:], results[1:-1], strict=True):
        assert claims(r.json()["id_token"])["sub"] == user.user_id
        refreshed = await token(user, {"grant_type": "refresh_token", "client_id": user.spa_id,
                                       "refresh_token": r.json()["refresh_token"]})  # fmt: skip
        assert refreshed.status_code == 200
    won = first if first.status_code == 200 else again
    refresh = await token(twice[0], {"grant_type": "refresh_token", "client_id": issuer.spa_id,
                                     "refresh_token": won.json()["refresh_token"]})  # fmt: skip
    assert refresh.json()["error"] == "invalid_grant"  # the replay revoked what it issued


async def test_the_51st_exchange_evicts_the_oldest_rp_session(tenant: Tenant):
    verifier, challenge = pkce()
    cookie = None
    answers = []
    for _ in range(51):
        code, cookie = await code_for(tenant, cookie, challenge)
        resp = await token(tenant, exchange_of(tenant, code, verifier))
        assert resp.status_code == 200, resp.text
        answers.append(resp.json())
    scope = tenant.admin.issuer(tenant.issuer_id)
    sids = [claims(a["id_token"])["sid"] for a in answers]
    evicted = await scope.sessions.get(sids[0])
    assert evicted.status == "expired" and evicted.status_reason == "evicted"
    kept = [await scope.sessions.get(sid) for sid in sids[1:]]
    assert [s.status for s in kept] == ["active"] * 50
    refresh = await token(tenant, {"grant_type": "refresh_token", "client_id": tenant.spa_id,
                                   "refresh_token": answers[0]["refresh_token"]})  # fmt: skip
    assert refresh.json()["error"] == "invalid_grant"  # its family ended with it
    newest = await token(tenant, {"grant_type": "refresh_token", "client_id": tenant.spa_id,
                                  "refresh_token": answers[-1]["refresh_token"]})  # fmt: skip
    assert newest.status_code == 200


async def test_prompt_login_and_consent_and_a_login_without_flow(tenant: Tenant):
    sdk, _, cookie = await login_with_sdk(tenant)
    first_sid = cookie.partition(".")[0]
    # prompt=consent shows the consent page although consent exists
    forced = sdk.create_authorization_url(scopes=["openid"])
    resp = await authorize(forced.url + "&prompt=consent", cookie)
    assert "/consent?flow=" in resp.headers["location"]
    # prompt=login asks for credentials again and opens a new op session
    relog = sdk.create_authorization_url(scopes=["openid"])
    resp = await authorize(relog.url + "&prompt=login", cookie)
    assert "/login?flow=" in resp.headers["location"]
    callback, new_cookie = await sign_in(tenant, relog.url + "&prompt=login", cookie=cookie)
    assert "code" in callback and new_cookie and new_cookie.partition(".")[0] != first_sid
    # a portal sign-in with no authorization behind it: an op session and the portal's page
    outcome = await tenant.interactions.login_without_flow(
        tenant.issuer_id, user_id=tenant.user_id, method="login_link", device=Device(),
        cookie=None,
    )  # fmt: skip
    assert outcome.set_cookie and outcome.redirect == f"{tenant.issuer_url}/login"
    session = await tenant.interactions.browser_session(tenant.issuer_id, outcome.set_cookie)
    assert session is not None and session.auth_method == "login_link"
    assert await tenant.interactions.browser_session(tenant.issuer_id, "s_x.forged") is None
    await sdk.close()


async def test_redirect_uri_left_out_at_authorize_may_be_left_out_at_token(tenant: Tenant):
    verifier, challenge = pkce()
    callback, _ = await sign_in(tenant, raw_url(
        tenant, client_id=tenant.web_id, response_type="code", scope="openid",
        code_challenge=challenge, code_challenge_method="S256",
    ))  # fmt: skip
    data = {"grant_type": "authorization_code", "code": callback["code"],
            "client_id": tenant.web_id, "client_secret": tenant.web_secret,
            "code_verifier": verifier}  # fmt: skip
    wrong = await token(tenant, {**data, "redirect_uri": WEB_CB + "/other"})
    assert wrong.json()["error"] == "invalid_grant"
    assert (await token(tenant, data)).status_code == 200


async def test_check_session_refuses_huge_and_deeply_nested_bodies(tenant: Tenant):
    async with httpx.AsyncClient(timeout=30) as http:
        huge = await http.post(
            f"{tenant.issuer_url}/check-session",
            content=b'{"client_id": "' + b"x" * 200_000 + b'"}',
            headers={"Content-Type": "application/json"},
        )
        deep = await http.post(
            f"{tenant.issuer_url}/check-session",
            content=b"[" * 2000 + b"]" * 2000,
            headers={"Content-Type": "application/json"},
        )
    assert huge.status_code == 413 and huge.json()["error"] == "invalid_request"
    assert deep.status_code == 400 and deep.json()["error"] == "invalid_request"


async def test_replay_rebuilds_the_session_views_as_they_were(tenant: Tenant, infra, pool):
    """`authpi replay` of the token service's session views (rebuilt by their set-based
    `apply_many` where a run of one type allows it, by `apply` otherwise) gives back the rows the
    write path made: sessions opened, families started, rotated, revoked and replayed."""
    from authpi.eventstore.replay import replay

    logins = [await login_with_sdk(tenant) for _ in range(3)]
    for sdk, agent, _ in logins:
        again = await sdk.refresh(agent)
        await sdk.refresh(again)
    with pytest.raises(RefreshError):
        await logins[0][0].refresh(logins[0][1])  # a replay: the family and its session end
    # Sessions opened with their family's start and left as the exchange wrote them (one INSERT
    # carrying what the start sets), among them two exchanged in one group commit.
    logins += await asyncio.gather(login_with_sdk(tenant), login_with_sdk(tenant))
    for sdk, _, _ in logins:
        await sdk.close()
    platform = tenant.platform
    token = next(p for p in platform.handle.parts if p.name == "token")
    schema = schema_of(platform, "token")
    tables = {"token-sessions": "sessions_view", "token-refresh-families": "refresh_families"}

    async def rows(table: str) -> list[tuple[Any, ...]]:
        query = sql.SQL("SELECT * FROM {}.{} ORDER BY 1").format(schema, sql.Identifier(table))
        async with pool.connection() as conn:
            return await (await conn.execute(query)).fetchall()

    projections = [p for p in token.inline_projections if p.name in tables]
    assert len(projections) == len(tables)
    sources = {s: f"{platform.namespace}_{s}" for s in ("token", "directory")}
    for projection in projections:
        before = await rows(tables[projection.name])
        assert before
        assert await replay(infra.dsn, projection, sources) > 0
        after = await rows(tables[projection.name])
        for a, b in zip(before, after, strict=True):
            assert a == b, [(i, x, y) for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
