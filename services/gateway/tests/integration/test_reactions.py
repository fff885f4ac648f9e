"""The gateway knows API keys, accounts, personal tokens and the platform issuer's public keys
from its own reactions (gateway-directory, gateway-platform-keys), never from the directory's
or the token service's tables (DESIGN.md 2): a gateway whose database role has no privilege at
all on their schemas authenticates keys, personal tokens and console users' tokens, follows
revocations and suspensions and checks account paths; its views and a freshly loaded cache agree
with what the running cache holds."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import jwt
import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Actor
from authpi.contracts.console import PLATFORM_ISSUER_ID, org_of_account
from authpi.directory.handlers.api_keys import KeyRestrictions
from authpi.gateway.caches.api_keys import CachedKey, from_row
from authpi.gateway.core import Gateway
from authpi.platform.testing.tenants import basic
from authpi.testing.plugin import eventually

ADMIN = Actor(type="system")


@contextlib.asynccontextmanager
async def gateway_only_role(platform, pool) -> AsyncIterator[AsyncConnectionPool]:
    """A pool whose sessions act as a role with rights on the gateway's schema only."""
    role = f"{platform.namespace}_gateway_only"
    gateway_schema = sql.Identifier(f"{platform.namespace}_gateway")
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        await conn.execute(
            sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(gateway_schema, sql.Identifier(role))
        )
        await conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(
                gateway_schema, sql.Identifier(role)
            )
        )

    async def as_role(conn: psycopg.AsyncConnection) -> None:
        await conn.set_autocommit(True)
        await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        await conn.set_autocommit(False)

    restricted = AsyncConnectionPool(
        platform.dsn, min_size=1, max_size=4, configure=as_role, open=False, timeout=10
    )
    await restricted.open(wait=True)
    try:
        yield restricted
    finally:
        await restricted.close()
        async with pool.connection() as conn:
            await conn.set_autocommit(True)
            await conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            await conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


async def test_gateway_needs_no_privilege_on_the_directory_schema(platform, pool, directory, serve):
    async with gateway_only_role(platform, pool) as restricted:
        # The role really cannot read what the gateway used to read.
        for view in ("api_keys_view", "accounts_view"):
            async with restricted.connection() as conn:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    await conn.execute(
                        sql.SQL("SELECT 1 FROM {} LIMIT 1").format(
                            sql.Identifier(f"{platform.namespace}_directory", view)
                        )
                    )

        gateway = Gateway(dataclasses.replace(platform.handle.rt, pool=restricted))
        routes = [r for p in platform.handle.parts for r in p.core_routes]
        app = gateway.core_app(routes, platform.handle.ready)
        async with gateway.running(), serve(app) as url:
            async with httpx.AsyncClient(base_url=url) as http:
                admin = basic(platform.api_key_id, platform.api_key_secret)
                assert (await http.get("/v1/me", headers=admin)).status_code == 200

                # A key created a moment ago works at once (own view, then its event awaited).
                key = await directory.create_api_key(platform.account_id, "fresh", [], actor=ADMIN)
                fresh = await http.get("/v1/me", headers=basic(key.key_id, key.secret))
                assert fresh.status_code == 200, fresh.text

                await directory.block_api_key(platform.account_id, key.key_id, actor=ADMIN)

                async def refused() -> bool:
                    resp = await http.get("/v1/me", headers=basic(key.key_id, key.secret))
                    return resp.status_code == 401

                await eventually(refused, timeout=5.0, interval=0.02)

                # The account path check: another account (created a moment ago) is 403, an
                # account that does not exist is 404.
                other = await directory.create_account("Other", actor=ADMIN)
                resp = await http.get(f"/v1/accounts/{other}", headers=admin)
                assert resp.status_code == 403, resp.text
                assert resp.json()["error"] == "access_denied"
                resp = await http.get(f"/v1/accounts/acc_{'0' * 25}", headers=admin)
                assert resp.status_code == 404, resp.text

                # Idempotency keys live in the gateway's own schema too.
                create = {"name": f"idem-{uuid.uuid4().hex[:8]}", "restrictions": {}}
                path = f"/v1/accounts/{platform.account_id}/api-keys"
                headers = {**admin, "Idempotency-Key": uuid.uuid4().hex}
                first = await http.post(path, json=create, headers=headers)
                again = await http.post(path, json=create, headers=headers)
                assert first.status_code == 201, first.text
                assert again.headers["idempotent-replayed"] == "true"
                assert again.content == first.content


async def view_row(platform, pool, key_id: str) -> CachedKey | None:
    query = sql.SQL("SELECT * FROM {} WHERE id = %s").format(
        sql.Identifier(f"{platform.namespace}_gateway", "api_keys_view")
    )
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        row = await (await cur.execute(query, [key_id])).fetchone()
    return None if row is None else from_row(row)


async def test_view_and_a_fresh_cache_agree_with_the_running_cache(
    platform, pool, directory, gateway
):
    later = int(time.time() * 1000) + 86_400_000
    restricted = KeyRestrictions(ip_allowlist=("203.0.113.0/24",), expires_at=later)
    changed = await directory.create_api_key(
        platform.account_id, "changed", ["issuers:read"], actor=ADMIN, restrictions=restricted
    )
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        resp = await http.patch(
            f"/v1/accounts/{platform.account_id}/api-keys/{changed.key_id}",
            json={"restrictions": {"scopes": ["account:read"], "ip_allowlist": []},
                  "expires_at": None},
            headers=basic(platform.api_key_id, platform.api_key_secret),
        )  # fmt: skip
        assert resp.status_code == 200, resp.text
    await directory.rotate_api_key(platform.account_id, changed.key_id, actor=ADMIN)
    blocked = await directory.create_api_key(platform.account_id, "blocked", [], actor=ADMIN)
    await directory.block_api_key(platform.account_id, blocked.key_id, actor=ADMIN)
    gone = await directory.create_api_key(platform.account_id, "gone", [], actor=ADMIN)
    await directory.delete_api_key(platform.account_id, gone.key_id, actor=ADMIN)
    last = await directory.create_api_key(platform.account_id, "last", [], actor=ADMIN)

    async def view_caught_up() -> bool:
        return await view_row(platform, pool, last.key_id) is not None

    await eventually(view_caught_up, timeout=10.0)

    async def cache_caught_up() -> bool:
        return gateway.api_keys.get(last.key_id) is not None

    await eventually(cache_caught_up, timeout=10.0)

    key = gateway.api_keys.get(changed.key_id)
    assert key.scopes == frozenset({"account:read"}) and key.ip_allowlist is None
    assert key.expires_at is None and key.previous_sha256 is not None
    assert gateway.api_keys.get(blocked.key_id).status == "blocked"
    assert gateway.api_keys.get(gone.key_id) is None
    for key_id in (changed.key_id, blocked.key_id, last.key_id):
        assert await view_row(platform, pool, key_id) == gateway.api_keys.get(key_id)
    assert await view_row(platform, pool, gone.key_id) is None

    # A cache started now loads the view with the consumer's checkpoint and follows from there.
    fresh = Gateway(platform.handle.rt)
    async with fresh.running():
        for key_id in (changed.key_id, blocked.key_id, last.key_id, platform.api_key_id):
            assert fresh.api_keys.get(key_id) == gateway.api_keys.get(key_id)
        assert fresh.api_keys.get(gone.key_id) is None


async def test_bearer_tokens_need_no_privilege_on_the_directory_or_token_schema(
    platform, pool, serve, admin
):
    async with admin:
        issuer = (await admin.issuers.create({"name": f"own-{uuid.uuid4().hex[:6]}"})).id
        users = admin.issuer(issuer).users
        user = await users.create(
            {"username_type": "email", "username": f"pat-{uuid.uuid4().hex[:8]}@example.com"}
        )
        pat = (await admin.issuer(issuer).user(user.id).tokens.create({"name": "cli"})).token_plain
        signer = next(p.exports["signer"] for p in platform.handle.parts if "signer" in p.exports)
        now = int(time.time())
        console = signer.sign(PLATFORM_ISSUER_ID, {
            "iss": f"{platform.idp_url}/{PLATFORM_ISSUER_ID}", "sub": "usr_console",
            "aud": "authpi-console", "exp": now + 600, "iat": now, "jti": uuid.uuid4().hex[:18],
            "organizations": [{"id": org_of_account(platform.account_id), "scopes": ["owner"]}],
        }, typ="at+jwt")  # fmt: skip

        async with gateway_only_role(platform, pool) as restricted:
            for schema in ("directory", "token"):
                async with restricted.connection() as conn:
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        await conn.execute(
                            sql.SQL("SELECT 1 FROM {} LIMIT 1").format(
                                sql.Identifier(f"{platform.namespace}_{schema}", "events")
                            )
                        )
            gateway = Gateway(dataclasses.replace(platform.handle.rt, pool=restricted))
            routes = [r for p in platform.handle.parts for r in p.core_routes]
            app = gateway.core_app(routes, platform.handle.ready)
            async with gateway.running(), serve(app) as url:

                async def me(token: str) -> httpx.Response:
                    headers = {"Authorization": f"Bearer {token}"}
                    async with httpx.AsyncClient(base_url=url) as http:
                        return await http.get("/v1/me", headers=headers)

                resp = await me(console)
                assert resp.status_code == 200, resp.text
                assert resp.json()["data"]["type"] == "user"
                resp = await me(pat)
                assert resp.status_code == 200, resp.text
                assert resp.json()["data"]["type"] == "personal_token"

                async def pat_status(expected: int) -> bool:
                    return (await me(pat)).status_code == expected

                # The owner's suspension, then reactivation, reach the gateway by their events.
                await users.update(user.id, {"status": "suspended"})
                await eventually(lambda: pat_status(401), timeout=5.0, interval=0.02)
                await users.update(user.id, {"status": "active"})
                await eventually(lambda: pat_status(200), timeout=5.0, interval=0.02)
                tokens = admin.issuer(issuer).user(user.id).tokens
                [jti] = [t.id async for t in tokens.list_all()]
                await admin.tokens.revoke(jti)
                await eventually(lambda: pat_status(401), timeout=5.0, interval=0.02)

                # A cache loaded now from the gateway's views agrees with the running one.
                fresh = Gateway(dataclasses.replace(platform.handle.rt, pool=restricted))
                async with fresh.running():
                    assert fresh.personal_tokens.get(jti) == gateway.personal_tokens.get(jti)
                    assert fresh.personal_tokens.get(jti).status == "revoked"
                    assert fresh.personal_tokens.owner_status(user.id) == "active"
                    kid = jwt.get_unverified_header(console)["kid"]
                    assert fresh.platform_keys.get(kid) == gateway.platform_keys.get(kid)
                    assert not fresh.platform_keys.get(kid).retired
