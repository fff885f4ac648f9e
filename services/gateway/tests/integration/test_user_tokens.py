"""Console users' access tokens on the Core API (core-api.md 1.2, 5.1): JWTs of AuthPI's own issuer,
minted here with the token service's own signer (the code path the hosted login will use) and
verified by the gateway with the platform issuer's public keys, learnt from `signing-key.*`
events into its own projection. Accounts and scopes come from the `organizations` claim."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import httpx
import jwt
import pytest
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import AuthenticationError, ForbiddenError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authpi.contracts.base import Actor
from authpi.contracts.console import PLATFORM_ISSUER_ID, org_of_account
from authpi.contracts.scopes import ALL_SCOPES
from authpi.errors import NotFound
from authpi.testing.plugin import eventually

ADMIN = Actor(type="system")


def signer(platform):
    return next(p.exports["signer"] for p in platform.handle.parts if "signer" in p.exports)


def membership(account_id: str, *scopes: str) -> dict:
    return {"id": org_of_account(account_id), "title": None, "scopes": list(scopes),
            "joined_at": 1767312000}  # fmt: skip


def console_claims(platform, organizations: list[dict], **changes) -> dict:
    now = int(time.time())
    claims = {
        "iss": f"{platform.idp_url}/{PLATFORM_ISSUER_ID}",
        "sub": f"usr_{uuid.uuid4().hex}",
        "aud": "authpi-console",
        "exp": now + 600,
        "iat": now,
        "jti": uuid.uuid4().hex[:18],
        "organizations": organizations,
    }
    return {**claims, **changes}


def mint(platform, organizations: list[dict], *, typ="at+jwt", alg=None, **changes) -> str:
    claims = console_claims(platform, organizations, **changes)
    return signer(platform).sign(PLATFORM_ISSUER_ID, claims, typ=typ, alg=alg)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def console(platform, token: str, account_id: str | None = None, **kw) -> AuthPIAdmin:
    return AuthPIAdmin(
        access_token=token, account_id=account_id, base_url=platform.api_url, retries=False, **kw
    )


async def get(platform, path: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        return await http.get(path, headers=bearer(token))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict) -> str:
    return b64(json.dumps(value).encode())


def parts_of(token: str) -> tuple[dict, dict, str]:
    head, body, signature = token.split(".")
    return (
        json.loads(jwt.utils.base64url_decode(head)),
        json.loads(jwt.utils.base64url_decode(body)),
        signature,
    )


def assert_invalid_token(resp: httpx.Response) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "invalid_token"
    assert resp.headers["www-authenticate"].startswith("Bearer")


async def test_sdk_with_a_console_token_sees_one_account_per_membership(platform, directory):
    other = await directory.create_account("Second tenant", actor=ADMIN)
    token = mint(
        platform,
        [membership(platform.account_id, "owner"), membership(other, "member", "issuers:read")],
    )
    async with console(platform, token) as admin:
        me = await admin.whoami()
    assert me["type"] == "user" and me["user_id"].startswith("usr_")
    assert me["key_id"] is None and me["issuer_id"] == PLATFORM_ISSUER_ID
    assert me["organizations"] == []
    accounts = {a["account_id"]: a for a in me["accounts"]}
    assert accounts.keys() == {platform.account_id, other}
    assert accounts[platform.account_id]["scopes"] == sorted(ALL_SCOPES)
    assert accounts[platform.account_id]["org_id"] == org_of_account(platform.account_id)
    # `member` is a role the Core API gives no scope; the catalogue scope beside it counts.
    assert accounts[other] == {
        "account_id": other, "org_id": org_of_account(other), "scopes": ["issuers:read"]
    }  # fmt: skip

    # On each account, the token acts with that membership's scopes.
    async with console(platform, token, other) as admin:
        assert [i async for i in admin.issuers.list_all()] == []
        with pytest.raises(ForbiddenError) as refused:
            await admin.issuers.create({"name": "not allowed here"})
        assert refused.value.error == "insufficient_scope"
    async with console(platform, token, platform.account_id) as admin:
        made = await admin.issuers.create({"name": f"console-{uuid.uuid4().hex[:6]}"})
        assert made.id in [i.id async for i in admin.issuers.list_all()]
        # GET /v1/accounts lists the accounts whose membership may read them: the owner's.
        assert [a.id async for a in admin.accounts.list_all()] == [platform.account_id]


async def test_sdk_resolves_the_account_of_a_single_membership_token(platform):
    token = mint(platform, [membership(platform.account_id, "issuers:read")])
    async with console(platform, token) as admin:
        assert await admin.http.resolve_account_id() == platform.account_id
        await admin.issuers.list()
        with pytest.raises(ForbiddenError) as refused:
            await admin.api_keys.list()
        assert refused.value.error == "insufficient_scope"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
async def test_tokens_of_every_published_algorithm_verify(platform, alg):
    token = mint(platform, [membership(platform.account_id)], alg=alg)
    assert parts_of(token)[0]["alg"] == alg
    resp = await get(platform, "/v1/me", token)
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["accounts"][0]["scopes"] == []


async def test_the_owner_can_do_everything_in_its_account(platform):
    token = mint(platform, [membership(platform.account_id, "owner")])
    async with console(platform, token, platform.account_id) as owner:
        issuer = await owner.issuers.create({"name": f"owned-{uuid.uuid4().hex[:6]}"})
        user = await owner.issuer(issuer.id).users.create(
            {"username_type": "email", "username": f"u-{uuid.uuid4().hex[:8]}@example.com"}
        )
        org = await owner.issuer(issuer.id).organizations.create({"name": "Customer"})
        # A key may carry only scopes its creator holds: the owner holds them all.
        key = await owner.api_keys.create(
            {"name": "from the console", "restrictions": {"scopes": list(ALL_SCOPES)}}
        )
        assert sorted(key.restrictions["scopes"]) == sorted(ALL_SCOPES)
        await owner.api_keys.revoke(key.id)
        assert (await owner.issuer(issuer.id).users.get(user.id)).id == user.id
        assert (await owner.issuer(issuer.id).organizations.get(org.id)).id == org.id
        await owner.issuer(issuer.id).users.delete(user.id)
        await owner.issuers.delete(issuer.id)
        with pytest.raises(Exception):  # noqa: B017 - gone: the SDK's not-found error
            await owner.issuers.get(issuer.id)


@pytest.mark.parametrize("role", ["member", "admin"])
async def test_a_member_without_the_scope_is_refused_with_insufficient_scope(platform, role):
    token = mint(platform, [membership(platform.account_id, role, "domains:read")])
    async with console(platform, token, platform.account_id) as admin:
        await admin.domains.list()
        for call in (admin.issuers.list, admin.api_keys.list, admin.accounts.list):
            with pytest.raises(ForbiddenError) as refused:
                await call()
            assert refused.value.error == "insufficient_scope"


async def test_another_accounts_path_is_403_and_an_unknown_account_404(platform, directory):
    other = await directory.create_account("Not mine", actor=ADMIN)
    token = mint(platform, [membership(platform.account_id, "owner")])
    resp = await get(platform, f"/v1/accounts/{other}/issuers", token)
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"] == "access_denied"
    resp = await get(platform, f"/v1/accounts/acc_{'0' * 25}/issuers", token)
    assert resp.status_code == 404, resp.text
    assert (await get(platform, f"/v1/accounts/{platform.account_id}", token)).status_code == 200


async def test_an_expired_token_is_401_and_the_sdk_refreshes_it(platform):
    expired = mint(platform, [membership(platform.account_id, "owner")],
                   exp=int(time.time()) - 1, iat=int(time.time()) - 600)  # fmt: skip
    resp = await get(platform, "/v1/me", expired)
    assert_invalid_token(resp)
    assert "expired" in resp.json()["error_description"]

    async with console(platform, expired) as admin:
        with pytest.raises(AuthenticationError) as refused:
            await admin.whoami()
        assert refused.value.error == "invalid_token"

    refreshed: list[str] = []

    async def refresh() -> dict[str, str]:
        refreshed.append(mint(platform, [membership(platform.account_id, "owner")]))
        return {"access_token": refreshed[-1]}

    async with console(platform, expired, platform.account_id, on_token_expired=refresh) as admin:
        await admin.issuers.list()
    assert len(refreshed) == 1


async def test_tokens_failing_a_check_are_401_invalid_token(platform):
    good = mint(platform, [membership(platform.account_id, "owner")])
    header, claims, signature = parts_of(good)
    head, body, _ = good.split(".")
    jwks = await platform_jwks(platform)
    public = jwt.PyJWK(next(k for k in jwks if k["kid"] == header["kid"])).key
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = segment({**header, "alg": "HS256"})
    hs_signature = hmac.new(pem, f"{hs_header}.{body}".encode(), hashlib.sha256).digest()
    stranger = ec.generate_private_key(ec.SECP256R1())
    orgs = [membership(platform.account_id, "owner")]
    refused = {
        "wrong iss": mint(platform, orgs, iss=f"{platform.idp_url}/i_{'x' * 25}"),
        "iss of another host": mint(platform, orgs, iss=f"https://idp.example/{PLATFORM_ISSUER_ID}"),
        "no typ": mint(platform, orgs, typ=None),
        "typ JWT": mint(platform, orgs, typ="JWT"),
        "not a user": mint(platform, orgs, sub="c_0123456789"),
        "no exp": _without(platform, orgs, "exp"),
        "unknown kid": jwt.encode(
            console_claims(platform, orgs), stranger, algorithm="ES256",
            headers={"kid": str(uuid.uuid4()), "typ": "at+jwt"},
        ),
        "tampered claims": f"{head}.{segment({**claims, 'sub': 'usr_someone_else'})}.{signature}",
        "tampered signature": f"{head}.{body}.{_flip(signature)}",
        "alg none": f"{segment({**header, 'alg': 'none'})}.{body}.",
        "HS256 keyed with the public key": f"{hs_header}.{body}.{b64(hs_signature)}",
        "alg of another key type": f"{segment({**header, 'alg': 'RS256'})}.{body}.{signature}",
        "API key secret": platform.api_key_secret,
        "API key id and secret": f"{platform.api_key_id}:{platform.api_key_secret}",
        "not a JWT": "a.b",
    }  # fmt: skip
    assert (await get(platform, "/v1/me", good)).status_code == 200
    for name, token in refused.items():
        resp = await get(platform, "/v1/me", token)
        assert resp.status_code == 401, f"{name}: {resp.text}"
        assert_invalid_token(resp)


async def test_a_token_signed_by_a_customer_issuer_is_refused(platform, admin):
    customer = (await admin.issuers.create({"name": f"cust-{uuid.uuid4().hex[:6]}"})).id

    async def signs() -> bool:
        try:
            signer(platform).sign(customer, {"sub": "usr_x"})
        except NotFound:
            return False
        return True

    await eventually(signs)
    orgs = [membership(platform.account_id, "owner")]
    as_platform = console_claims(platform, orgs)  # claims the platform issuer's `iss`
    as_customer = console_claims(platform, orgs, iss=f"{platform.idp_url}/{customer}")
    for claims in (as_platform, as_customer):
        token = signer(platform).sign(customer, claims, typ="at+jwt")
        assert_invalid_token(await get(platform, "/v1/me", token))


async def platform_jwks(platform) -> list[dict]:
    async with httpx.AsyncClient() as http:
        resp = await http.get(f"{platform.idp_url}/{PLATFORM_ISSUER_ID}/jwks.json")
    assert resp.status_code == 200, resp.text
    return resp.json()["keys"]


def _without(platform, orgs: list[dict], claim: str) -> str:
    claims = console_claims(platform, orgs)
    del claims[claim]
    return signer(platform).sign(PLATFORM_ISSUER_ID, claims, typ="at+jwt")


def _flip(signature: str) -> str:
    return signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
