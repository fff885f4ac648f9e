"""The per-user PII keys move from the directory's schema into the region's PII key store
(migration 0009): on a fresh database the directory never keeps a key table, and on one that
already holds keys every key moves unchanged (same wrapping, so it still opens the user's PII)
before the directory's table is dropped, into the store of the host's region."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from psycopg import sql

from authpi.crypto.envelope import Kek, new_key
from authpi.crypto.pii import MIGRATIONS as PII_MIGRATIONS
from authpi.crypto.pii import Pii, PiiVault, region_store
from authpi.directory.service import MIGRATIONS
from authpi.eventstore.migrations import migrate

MOVE = "0009_pii_keys_to_region_store.sql"


async def _table(conn, schema: str, table: str) -> bool:
    cur = await conn.execute("SELECT to_regclass(%s)", [f"{schema}.{table}"])
    return (await cur.fetchone())[0] is not None


async def test_a_fresh_database_keeps_keys_only_in_the_region_store(pool, namespace):
    directory, store = f"{namespace}_directory", region_store(namespace)
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        assert await migrate(conn, store, PII_MIGRATIONS, event_store=False) == [
            "service/0001_pii_keys.sql"
        ]
        applied = await migrate(conn, directory, MIGRATIONS)
        assert f"service/{MOVE}" in applied
        assert await _table(conn, store, "pii_keys")
        assert not await _table(conn, directory, "pii_keys")
        assert not await _table(conn, store, "events")  # the store holds no events
        assert await migrate(conn, directory, MIGRATIONS) == []  # forward-only, once


@pytest.mark.parametrize("region", ["default", "eu"])
async def test_existing_keys_move_to_the_region_store(pool, namespace, tmp_path: Path, region):
    directory, store = f"{namespace}_directory", region_store(namespace, region)
    before = tmp_path / "migrations"
    before.mkdir()
    for path in sorted(MIGRATIONS.glob("[0-9]*.sql")):
        if path.name < MOVE:
            shutil.copy(path, before / path.name)
    vault_then = PiiVault(Kek(new_key()), directory)  # where the keys used to be written
    sealed: dict[str, str] = {}
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await migrate(conn, store, PII_MIGRATIONS, event_store=False)
        await migrate(conn, directory, before)
        assert await _table(conn, directory, "pii_keys")
        for i in range(3):
            subject, dek = f"usr_{i}", vault_then.new_key()
            await vault_then.store(conn, subject, dek)
            sealed[subject] = PiiVault.seal(dek, subject, Pii(username=f"u{i}@example.com"))
        old = await conn.execute(
            sql.SQL("SELECT subject_id, wrapped_key, created_at FROM {}.pii_keys").format(
                sql.Identifier(directory)
            )
        )
        rows = sorted(await old.fetchall())

        if region != "default":  # the host names its region's store
            await conn.execute("SELECT set_config('authpi.pii_store', %s, false)", [store])
        try:
            applied = await migrate(conn, directory, MIGRATIONS)
            assert applied[0] == f"service/{MOVE}"  # later files follow it
        finally:
            await conn.execute("RESET authpi.pii_store")

        assert not await _table(conn, directory, "pii_keys")
        moved = await conn.execute(
            sql.SQL("SELECT subject_id, wrapped_key, created_at FROM {}.pii_keys").format(
                sql.Identifier(store)
            )
        )
        assert sorted(await moved.fetchall()) == rows
        vault_now = PiiVault(vault_then.kek, store)
        for subject, token in sealed.items():
            pii = await vault_now.open_stored(conn, subject, token)
            assert pii is not None and pii.username == f"u{subject[-1]}@example.com"


async def test_the_move_refuses_to_run_before_the_region_store_exists(pool, namespace):
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        with pytest.raises(Exception, match="must be migrated first"):
            await migrate(conn, f"{namespace}_directory", MIGRATIONS)
        # Nothing of the failed migration stays: it runs again once the store is there.
        await migrate(conn, region_store(namespace), PII_MIGRATIONS, event_store=False)
        assert f"service/{MOVE}" in await migrate(conn, f"{namespace}_directory", MIGRATIONS)
