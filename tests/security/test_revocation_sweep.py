"""`revoked_tokens` does not grow forever (issue 9, "Also fix"): the token service's sweeper
deletes the rows of revoked tokens past `exp` (plus a margin for lagging clocks), by the injected
clock; a revocation whose token is still live stays, and that token stays inactive.

A platform of its own on a FixedClock; tokens are minted, revoked and introspected through real
HTTP on the IdP port, and the table is read straight from PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest_asyncio
from authpi_admin import AuthPIAdmin
from psycopg import sql

from authpi.crypto.clock import FixedClock
from authpi.messaging.follower import Feed
from authpi.platform.testing.plugin import running_platform
from authpi.platform.testing.tenants import part, signing_ready
from authpi.testing.plugin import eventually
from authpi.token.caches.revoked_tokens import DenyList
from authpi.token.projections.revoked_tokens import SWEEP_MARGIN_MS

MINUTE_MS = 60_000


@pytest_asyncio.fixture(scope="module")
async def clocked(infra, tmp_path_factory):
    clock = FixedClock(int(time.time() * 1000))
    async with running_platform(infra, tmp_path_factory.mktemp("sweep"), clock) as platform:
        yield platform, clock


def token_part(platform):
    return next(p for p in platform.handle.parts if p.name == "token")


async def new_client(platform) -> tuple[str, str, str]:
    """(issuer id, client id, secret) once the token service can sign for the client."""
    admin = AuthPIAdmin(
        api_key=(platform.api_key_id, platform.api_key_secret),
        account_id=platform.account_id,
        base_url=platform.api_url,
        retries=False,
    )
    issuer = await admin.issuers.create({"name": "sweep"})
    client = await admin.issuer(issuer.id).clients.create({"name": "svc", "type": "m2m"})
    await signing_ready(platform, issuer.id)

    async def known() -> bool:
        return part(platform, "clients", "token").get(client.id) is not None

    await eventually(known)
    return issuer.id, client.id, client.secret


async def call(platform, issuer_id: str, endpoint: str, auth: tuple[str, str], **form) -> dict:
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(f"{platform.idp_url}/{issuer_id}/{endpoint}", data=form, auth=auth)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def revoked_rows(platform, pool) -> set[str]:
    query = sql.SQL("SELECT jti FROM {}.revoked_tokens").format(
        sql.Identifier(f"{platform.namespace}_token")
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query)
        return {row[0] for row in await cur.fetchall()}


async def test_expired_revocations_are_swept_and_live_ones_stay(clocked, pool):
    platform, clock = clocked
    issuer_id, client_id, secret = await new_client(platform)
    auth = (client_id, secret)
    early = await call(platform, issuer_id, "token", auth, grant_type="client_credentials")
    clock.advance(ms=20 * MINUTE_MS)
    late = await call(platform, issuer_id, "token", auth, grant_type="client_credentials")
    tokens = [early["access_token"], late["access_token"]]
    jtis = [jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens]
    for token in tokens:
        await call(platform, issuer_id, "revoke", auth, token=token)
    assert set(jtis) <= await revoked_rows(platform, pool)

    # Past the early token's exp (and the margin), still before the late one's.
    early_exp = jwt.decode(tokens[0], options={"verify_signature": False})["exp"] * 1000
    clock.advance(ms=early_exp + SWEEP_MARGIN_MS + MINUTE_MS - clock.now_ms())
    late_exp = jwt.decode(tokens[1], options={"verify_signature": False})["exp"] * 1000
    assert clock.now_ms() < late_exp
    sweeper = part(platform, "revocations", "token")
    assert await sweeper.sweep() >= 1

    rows = await revoked_rows(platform, pool)
    assert jtis[0] not in rows and jtis[1] in rows
    assert await call(platform, issuer_id, "introspect", auth, token=tokens[0]) == {"active": False}
    assert await call(platform, issuer_id, "introspect", auth, token=tokens[1]) == {"active": False}


async def test_the_sweeper_runs_as_a_background_task(clocked):
    platform, _ = clocked
    names = [name for name, _ in token_part(platform).tasks]
    assert "token:revocation-sweeper" in names
    assert any(t.get_name() == "token:revocation-sweeper" for t in platform.handle.tasks)


async def test_a_cached_token_reads_inactive_once_expired(clocked):
    """Introspection keeps the tokens it has verified (signing.verifier): the expiry is still
    checked on every call, by the injected clock."""
    platform, clock = clocked
    issuer_id, client_id, secret = await new_client(platform)
    auth = (client_id, secret)
    token = (await call(platform, issuer_id, "token", auth, grant_type="client_credentials"))[
        "access_token"
    ]
    for _ in range(3):  # verified once, then answered from the cache
        assert (await call(platform, issuer_id, "introspect", auth, token=token))["active"] is True
    exp = jwt.decode(token, options={"verify_signature": False})["exp"] * 1000
    clock.advance(ms=exp - clock.now_ms())
    assert await call(platform, issuer_id, "introspect", auth, token=token) == {"active": False}


async def test_a_starting_process_loads_earlier_revocations_then_follows_new_ones(clocked):
    """The per-process deny-list (caches.revoked_tokens) of a process that starts after a
    revocation holds it from the view (there is no checkpoint: the view is written with the
    event), then learns later revocations from the stream."""
    platform, _ = clocked
    issuer_id, client_id, secret = await new_client(platform)
    auth = (client_id, secret)
    tokens = [
        (await call(platform, issuer_id, "token", auth, grant_type="client_credentials"))[
            "access_token"
        ]
        for _ in range(2)
    ]
    jtis = [jwt.decode(t, options={"verify_signature": False})["jti"] for t in tokens]
    await call(platform, issuer_id, "revoke", auth, token=tokens[0])

    rt = platform.handle.rt
    schema = f"{platform.namespace}_token"
    fresh = DenyList(Feed(rt.pool, rt.js, rt.namespace, schema), schema, rt.clock)
    stop = asyncio.Event()
    task = asyncio.create_task(fresh.run(stop))
    try:
        await asyncio.wait_for(fresh.warm.wait(), 30)
        assert fresh.revoked(jtis[0]) and not fresh.revoked(jtis[1])
        await call(platform, issuer_id, "revoke", auth, token=tokens[1])

        async def learnt() -> bool:
            return fresh.revoked(jtis[1])

        await eventually(learnt)
    finally:
        stop.set()
        await task
