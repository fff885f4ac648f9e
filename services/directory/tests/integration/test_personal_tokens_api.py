"""Personal tokens (core-api.md 3.5) and issuer token introspection (3.6) over the Core API with
the official SDK: shown once and stored as a digest, user- and account-level routes, revocation,
Bearer authentication at the gateway, introspection answers, limits, scopes and isolation."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import (
    AuthenticationError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)

from authpi.contracts.base import Meta
from authpi.crypto.ids import sha256_hex
from authpi.directory.domain import api_key
from authpi.directory.domain.commands.api_key import CreateApiKey
from authpi.testing.plugin import eventually

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


@pytest.fixture
async def user_id(admin, issuer):
    created = await admin.issuer(issuer).users.create(
        {"username_type": "email", "username": f"pat-{uuid.uuid4().hex[:10]}@example.com"}
    )
    return created.id


def bearer_admin(platform, token: str, account_id: str | None = None) -> AuthPIAdmin:
    return AuthPIAdmin(
        access_token=token, account_id=account_id, base_url=platform.api_url, retries=False
    )


async def refused_at_gateway(platform, token: str) -> bool:
    async with bearer_admin(platform, token, platform.account_id) as pat:
        try:
            await pat.whoami()
        except AuthenticationError as refused:
            return refused.error == "invalid_token"
    return False


async def new_token(admin, issuer, user_id, **body) -> str:
    created = await admin.issuer(issuer).user(user_id).tokens.create({"name": "cli", **body})
    return created.token_plain


async def token_id_of(admin, issuer, user_id, name: str) -> str:
    tokens = [t async for t in admin.issuer(issuer).user(user_id).tokens.list_all()]
    return next(t.id for t in tokens if t.name == name)


async def test_token_is_shown_once_and_stored_only_as_a_digest(
    platform, pool, kit, admin, issuer, user_id
):
    token = await new_token(admin, issuer, user_id, restrictions={"scopes": ["issuers:read"]})
    assert token.startswith("ptk_") and token.count(".") == 2
    signature = token.rsplit(".", 1)[1]
    assert await kit.places_holding(platform, pool, signature) == []
    # The digest: the directory's event and view, and the gateway's own projection of it.
    holding = [
        f"{platform.namespace}_directory.events.data",
        f"{platform.namespace}_directory.personal_tokens_view.token_sha256",
        f"{platform.namespace}_gateway.personal_tokens_view.token_sha256",
    ]

    async def projected() -> bool:
        return sorted(await kit.places_holding(platform, pool, sha256_hex(token))) == holding

    await eventually(projected, timeout=10.0)
    token_id = await token_id_of(admin, issuer, user_id, "cli")
    got = await admin.tokens.get(token_id)
    assert (got.type, got.user_id, got.issuer_id, got.status) == (
        "personal_token",
        user_id,
        issuer,
        "active",
    )
    assert got.restrictions == {"scopes": ["issuers:read"]} and got.jti == token_id
    assert await kit.events_of(platform, pool, token_id) == ["user.personal-token.created"]


async def test_sdk_lists_revokes_and_deletes(platform, pool, kit, admin, issuer, user_id):
    tokens = admin.issuer(issuer).user(user_id).tokens
    for i in range(5):
        await tokens.create({"name": f"t{i}", "tags": ["ci"], "audience": "https://api.test"})
    listed = [t async for t in tokens.list_all(limit=2)]
    assert [t.name for t in listed] == ["t4", "t3", "t2", "t1", "t0"]
    assert listed[0].scopes == [] and listed[0].tags == ["ci"]
    assert listed[0].audience == "https://api.test"

    revoked = await admin.tokens.revoke(listed[0].id, {"status_reason": "leaked"})
    assert (revoked.status, revoked.status_reason) == ("revoked", "leaked")
    assert [t.id async for t in tokens.list_all(status="revoked")] == [listed[0].id]
    again = await admin.tokens.revoke(listed[0].id)
    assert again._etag == revoked._etag  # already revoked: nothing new

    await admin.tokens.delete(listed[1].id)
    with pytest.raises(NotFoundError):
        await admin.tokens.get(listed[1].id)
    assert await kit.events_of(platform, pool, listed[0].id) == [
        "user.personal-token.created",
        "user.personal-token.updated",
    ]
    assert await kit.events_of(platform, pool, listed[1].id) == [
        "user.personal-token.created",
        "user.personal-token.deleted",
    ]


async def test_personal_token_authenticates_as_its_user_with_its_scopes(
    platform, admin, issuer, user_id
):
    token = await new_token(admin, issuer, user_id, restrictions={"scopes": ["issuers.users:read"]})
    async with bearer_admin(platform, token) as pat:  # account resolved from GET /v1/me
        me = await pat.whoami()
        assert (me["type"], me["user_id"], me["issuer_id"]) == ("personal_token", user_id, issuer)
        assert [a["account_id"] for a in me["accounts"]] == [platform.account_id]
        assert user_id in [u.user_id async for u in pat.issuer(issuer).users.list_all()]
        with pytest.raises(ForbiddenError) as refused:
            await pat.issuer(issuer).users.create({"username_type": "email", "username": "x@y.z"})
        assert refused.value.error == "insufficient_scope"

    # The gateway learns the revocation from its event: within moments, not at once.
    await admin.tokens.revoke(await token_id_of(admin, issuer, user_id, "cli"))
    await eventually(lambda: refused_at_gateway(platform, token), timeout=5.0)


async def test_tampered_or_foreign_bearer_tokens_are_refused(platform, admin, issuer, user_id):
    token = await new_token(admin, issuer, user_id)
    head, body, signature = token.split(".")
    tampered = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    for value in (tampered, "ptk_not.a.jwt", "ptk_", "eyJhbGciOiJub25lIn0.e30."):
        async with bearer_admin(platform, value, platform.account_id) as pat:
            with pytest.raises(AuthenticationError) as refused:
                await pat.issuer(issuer).users.list()
        assert refused.value.error == "invalid_token"


async def test_deleting_the_user_disables_its_tokens(platform, admin, issuer, user_id):
    token = await new_token(admin, issuer, user_id, restrictions={"scopes": ["issuers:read"]})
    assert not await refused_at_gateway(platform, token)
    await admin.issuer(issuer).users.delete(user_id)
    await eventually(lambda: refused_at_gateway(platform, token), timeout=5.0)
    answer = await admin.issuer(issuer).tokens.introspect({"token": token})
    assert answer == {"active": False, "reason": "suspended"}


async def test_introspection_of_personal_tokens(platform, kit, admin, issuer, user_id):
    token = await new_token(
        admin,
        issuer,
        user_id,
        restrictions={"scopes": ["issuers:read"]},
        metadata={"team": "ops"},
    )
    introspect = admin.issuer(issuer).tokens.introspect
    answer = await introspect({"token": token})
    assert answer["active"] is True and answer["token_type"] == "personal_token"
    assert (answer["user_id"], answer["issuer_id"], answer["scopes"]) == (
        user_id,
        issuer,
        ["issuers:read"],
    )
    assert answer["metadata"] == {"team": "ops"}
    other_issuer = await kit.new_issuer(admin)
    assert await admin.issuer(other_issuer).tokens.introspect({"token": token}) == {
        "active": False,
        "reason": "not_found",
    }
    assert await introspect({"token": token[:-3] + "abc"}) == {"active": False, "reason": "invalid"}
    await admin.tokens.revoke(answer["id"])
    assert await introspect({"token": token}) == {"active": False, "reason": "revoked"}
    with pytest.raises(ValidationError):
        await introspect({})
    with pytest.raises(ValidationError):
        await introspect()


async def test_expired_token_is_inactive(platform, kit, admin, issuer, user_id):
    clock_now = int(time.time() * 1000)  # the session's platforms run on the system clock
    token = await new_token(admin, issuer, user_id, expires_at=clock_now + 1500)
    introspect = admin.issuer(issuer).tokens.introspect

    async def expired() -> bool:
        return await introspect({"token": token}) == {"active": False, "reason": "expired"}

    await eventually(expired)
    listed = [t async for t in admin.issuer(issuer).user(user_id).tokens.list_all()]
    assert listed[0].status == "expired"


async def _issuer_key(platform, kit, issuer, **extra) -> tuple[str, str]:
    directory = kit.part(platform, "directory")
    key_id, secret = platform.handle.rt.ids.new("key"), directory.new_secret()
    cmd = CreateApiKey(
        key_id=key_id,
        account_id=platform.account_id,
        org_id="org_" + "k" * 25,
        issuer_id=issuer,
        name="backend",
        secret_sha256=sha256_hex(secret),
        secret_hint=secret[-8:],
        now=platform.handle.rt.clock.now_ms(),
        scopes=["projects:read"],
        **extra,
    )
    meta = Meta(account_id=platform.account_id, issuer_id=issuer)
    await directory.store.execute(key_id, api_key, cmd, meta, directory.projections)
    return key_id, secret


@pytest.mark.in_process  # writes the key through the directory's store
async def test_introspection_of_api_keys(platform, kit, admin, issuer):
    key_id, secret = await _issuer_key(platform, kit, issuer, ip_allowlist=["10.0.0.0/8"])
    introspect = admin.issuer(issuer).tokens.introspect
    answer = await introspect({"token": f"{key_id}:{secret}"})
    assert (answer["active"], answer["token_type"], answer["id"]) == (True, "api_key", key_id)
    assert answer["scopes"] == ["projects:read"] and answer["expires_at"] is None
    inside = await introspect({"token": f"{key_id}:{secret}", "ip": "10.1.2.3"})
    assert inside["active"] is True
    outside = await introspect({"token": f"{key_id}:{secret}", "ip": "192.0.2.1"})
    assert outside == {"active": False, "reason": "ip_not_allowed"}
    wrong = await introspect({"token": f"{key_id}:nope"})
    assert wrong == {"active": False, "reason": "invalid"}
    unknown = await introspect({"token": "key_" + "0" * 32 + ":x"})
    assert unknown == {"active": False, "reason": "not_found"}
    account_key = f"{platform.api_key_id}:{platform.api_key_secret}"
    assert await introspect({"token": account_key}) == {"active": False, "reason": "not_found"}
    directory = kit.part(platform, "directory")
    await directory.block_api_key(platform.account_id, key_id, actor=kit.ADMIN)
    blocked = await introspect({"token": f"{key_id}:{secret}"})
    assert blocked == {"active": False, "reason": "blocked"}


async def test_a_user_holds_at_most_fifty_active_tokens(admin, issuer, user_id):
    tokens = admin.issuer(issuer).user(user_id).tokens
    for i in range(50):
        await tokens.create({"name": f"n{i}"})
    with pytest.raises(ValidationError) as refused:
        await tokens.create({"name": "one too many"})
    assert refused.value.status_code == 422
    first = [t async for t in tokens.list_all(limit=100)][-1]
    await admin.tokens.revoke(first.id)
    await tokens.create({"name": "after a revoke"})


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ("{", 400, None),
        ("{}", 422, "name"),
        ('{"name": ""}', 422, "name"),
        ('{"name": "x", "restrictions": {"scopes": ["nope:read"]}}', 422, "restrictions.scopes.0"),
        ('{"name": "x", "restrictions": {"scopes": "issuers:read"}}', 422, "restrictions.scopes"),
        ('{"name": "x", "expires_at": 1000}', 422, "expires_at"),
        ('{"name": "x", "expires_at": -5}', 422, "expires_at"),
        ('{"name": "x", "tags": [1]}', 422, "tags.0"),
        ('{"name": "x", "metadata": {"": 1}}', 422, "metadata"),
    ],
)
async def test_bad_create_bodies_are_refused_without_events(
    platform, pool, kit, issuer, user_id, body, status, field
):
    before = await kit.count_events(platform, pool)
    url = (
        f"{platform.api_url}/v1/accounts/{platform.account_id}/issuers/{issuer}"
        f"/users/{user_id}/tokens"
    )
    async with httpx.AsyncClient(auth=(platform.api_key_id, platform.api_key_secret)) as http:
        resp = await http.post(url, content=body, headers={"content-type": "application/json"})
    assert resp.status_code == status, resp.text
    if field is not None:
        assert field in [f["field"] for f in resp.json()["fields"]]
    assert await kit.count_events(platform, pool) == before


async def test_a_token_cannot_carry_scopes_its_creator_lacks(platform, kit, issuer, user_id):
    key = await kit.key_with(platform, ["issuers.users.tokens:write", "issuers.users:read"])
    async with kit.admin_for(platform, key.key_id, key.secret) as limited:
        tokens = limited.issuer(issuer).user(user_id).tokens
        await tokens.create({"name": "ok", "restrictions": {"scopes": ["issuers.users:read"]}})
        with pytest.raises(ValidationError):
            await tokens.create({"name": "no", "restrictions": {"scopes": ["webhooks:read"]}})


async def test_unknown_user_and_token_are_not_found(admin, issuer):
    with pytest.raises(NotFoundError):
        await admin.issuer(issuer).user("usr_missing").tokens.create({"name": "x"})
    with pytest.raises(NotFoundError):
        await admin.issuer(issuer).user("usr_missing").tokens.list()
    for call in (admin.tokens.get, admin.tokens.revoke, admin.tokens.delete):
        with pytest.raises(NotFoundError):
            await call("ptk_missing")


@pytest.mark.in_process  # another account: made in-process
async def test_another_accounts_key_is_refused_on_every_route(
    platform, kit, admin, issuer, user_id
):
    await new_token(admin, issuer, user_id)
    token_id = await token_id_of(admin, issuer, user_id, "cli")
    directory = kit.part(platform, "directory")
    other = await directory.create_account("Tenant C", actor=kit.ADMIN)
    scopes = ["tokens:write", "tokens:delete", "issuers.users.tokens:write", "issuers.tokens:read"]
    key = await kit.key_with(platform, scopes, other)
    async with kit.admin_for(platform, key.key_id, key.secret, platform.account_id) as intruder:
        user_tokens = intruder.issuer(issuer).user(user_id).tokens
        calls = [
            user_tokens.list(),
            user_tokens.create({"name": "x"}),
            intruder.tokens.get(token_id),
            intruder.tokens.revoke(token_id),
            intruder.tokens.delete(token_id),
            intruder.issuer(issuer).tokens.introspect({"token": "ptk_x"}),
        ]
        for call in calls:
            with pytest.raises(ForbiddenError):
                await call
    async with kit.admin_for(platform, key.key_id, key.secret, other) as own:
        with pytest.raises(NotFoundError):
            await own.tokens.get(token_id)
    assert (await admin.tokens.get(token_id)).status == "active"


@pytest.mark.parametrize(
    ("missing", "route"),
    [
        ("issuers.users.tokens:read", "list"),
        ("issuers.users.tokens:write", "create"),
        ("tokens:read", "get"),
        ("tokens:write", "revoke"),
        ("tokens:delete", "delete"),
        ("issuers.tokens:read", "introspect"),
    ],
)
async def test_a_key_without_the_scope_is_refused(
    platform, kit, admin, issuer, user_id, missing, route
):
    await new_token(admin, issuer, user_id)
    token_id = await token_id_of(admin, issuer, user_id, "cli")
    removed = {missing}
    if missing.endswith(":read"):
        removed |= {missing.replace(":read", ":write"), missing.replace(":read", ":manage")}
    key = await kit.all_scopes_but(platform, *removed)
    async with kit.admin_for(platform, key.key_id, key.secret) as limited:
        calls = {
            "list": lambda: limited.issuer(issuer).user(user_id).tokens.list(),
            "create": lambda: limited.issuer(issuer).user(user_id).tokens.create({"name": "x"}),
            "get": lambda: limited.tokens.get(token_id),
            "revoke": lambda: limited.tokens.revoke(token_id),
            "delete": lambda: limited.tokens.delete(token_id),
            "introspect": lambda: limited.issuer(issuer).tokens.introspect({"token": "ptk_x"}),
        }
        with pytest.raises(ForbiddenError) as refused:
            await calls[route]()
    assert refused.value.error == "insufficient_scope"
