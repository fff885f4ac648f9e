"""API-key handlers through the real event store: the events they append and the api_keys_view
rows they leave (status, rotation digests, version), plus their refusals."""

from __future__ import annotations

import pytest
from psycopg import sql

from authpi.contracts.base import Actor
from authpi.crypto.ids import sha256_hex
from authpi.directory.handlers.api_keys import StatusChange
from authpi.errors import Conflict, NotFound, PreconditionFailed

ADMIN = Actor(type="system")


async def view_row(platform, pool, key_id: str) -> dict:
    query = sql.SQL(
        "SELECT status, status_reason, status_by, secret_sha256, previous_sha256,"
        " previous_valid_until, last_rotated_at, version, updated_at"
        " FROM {}.api_keys_view WHERE id = %s"
    ).format(sql.Identifier(f"{platform.namespace}_directory"))
    async with pool.connection() as conn:
        cur = await conn.execute(query, [key_id])
        row = await cur.fetchone()
        names = [c.name for c in cur.description]
    return dict(zip(names, row, strict=True))


async def event_types(platform, pool, key_id: str) -> list[str]:
    query = sql.SQL("SELECT type FROM {}.events WHERE stream_id = %s ORDER BY position").format(
        sql.Identifier(f"{platform.namespace}_directory")
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query, [key_id])
        return [r[0] for r in await cur.fetchall()]


async def test_block_unblock_revoke_reach_the_view(platform, pool, directory):
    key = await directory.create_api_key(platform.account_id, "cycle", [], actor=ADMIN)
    change = StatusChange(status_reason="suspicious", status_by="ops")
    await directory.block_api_key(platform.account_id, key.key_id, actor=ADMIN, change=change)
    row = await view_row(platform, pool, key.key_id)
    assert (row["status"], row["status_reason"], row["status_by"]) == (
        "blocked",
        "suspicious",
        "ops",
    )
    await directory.unblock_api_key(platform.account_id, key.key_id, actor=ADMIN)
    await directory.revoke_api_key(platform.account_id, key.key_id, actor=ADMIN)
    row = await view_row(platform, pool, key.key_id)
    assert row["status"] == "revoked" and row["version"] == 4
    assert await event_types(platform, pool, key.key_id) == [
        "api-key.created",
        "api-key.blocked",
        "api-key.unblocked",
        "api-key.updated",
    ]


async def test_rotation_keeps_the_previous_digest_in_the_view(platform, pool, directory):
    key = await directory.create_api_key(platform.account_id, "rotate", [], actor=ADMIN)
    rotated = await directory.rotate_api_key(platform.account_id, key.key_id, actor=ADMIN)
    row = await view_row(platform, pool, key.key_id)
    assert row["secret_sha256"] == sha256_hex(rotated.secret)
    assert row["previous_sha256"] == sha256_hex(key.secret)
    assert row["previous_valid_until"] == row["last_rotated_at"] + 900_000
    assert row["version"] == 2 and row["updated_at"] == row["last_rotated_at"]


async def test_refusals(platform, directory, other_account_id="acc_" + "q" * 25):
    key = await directory.create_api_key(platform.account_id, "refuse", [], actor=ADMIN)
    with pytest.raises(NotFound):
        await directory.block_api_key(other_account_id, key.key_id, actor=ADMIN)
    with pytest.raises(PreconditionFailed):
        stale = StatusChange(if_match='"1"')
        await directory.block_api_key(platform.account_id, key.key_id, actor=ADMIN, change=stale)
    await directory.revoke_api_key(platform.account_id, key.key_id, actor=ADMIN)
    with pytest.raises(Conflict):
        await directory.unblock_api_key(platform.account_id, key.key_id, actor=ADMIN)
    with pytest.raises(NotFound):
        await directory.create_api_key(other_account_id, "nowhere", [], actor=ADMIN)
