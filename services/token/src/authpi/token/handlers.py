"""KeyRing: the only write path of SigningKeys. It brings an issuer's key set in line with the
rotation plan (authpi.token.rotation) and retires the keys of deleted issuers. Each new key's
private half is wrapped by the KEK into signing_key_secrets in the same transaction as its
`signing-key.created` event, which carries the public JWK only. Changes NOTIFY the key caches."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from authpi.contracts.base import Meta
from authpi.contracts.console import PLATFORM_ACCOUNT, PLATFORM_ISSUER_ID
from authpi.eventstore.store import EventStore, StoredEvent, fold
from authpi.token.domain import signing_key
from authpi.token.domain.commands import CreateSigningKey, RetireSigningKey
from authpi.token.keys import generate, public_jwk, wrap_private
from authpi.token.projections.signing_keys import SigningKeysView
from authpi.token.queries import Sql
from authpi.token.rotation import KeyAge, Plan, plan
from authpi.web.runtime import Runtime


class KeyRing:
    def __init__(self, rt: Runtime, schema: str) -> None:
        self.pool = rt.pool
        self.kek = rt.kek
        self.ids = rt.ids
        self.clock = rt.clock
        self.store = EventStore(rt.pool, schema, "token", rt.ids)
        self.view = SigningKeysView(schema)
        self.sql = Sql(schema)

    async def ensure(
        self, conn: psycopg.AsyncConnection[Any], issuer_id: str, account_id: str, meta: Meta
    ) -> Plan:
        """Inside the caller's transaction: keys for every algorithm the issuer lacks."""
        return await self._converge(conn, issuer_id, account_id, meta, self.clock.now_ms())

    async def ensure_platform_issuer(self) -> None:
        """AuthPI's own issuer (console users' tokens) is not a customer resource, so no
        directory event announces it: the token service keeps it with fixed defaults and gives
        it keys like any other issuer. Idempotent, and safe in concurrent processes (the issuer
        lock serialises the key plan)."""
        meta = Meta(account_id=PLATFORM_ACCOUNT, issuer_id=PLATFORM_ISSUER_ID, trigger="system")
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(
                self.sql.platform_issuer,
                [PLATFORM_ISSUER_ID, PLATFORM_ACCOUNT, self.clock.now_ms()],
            )
            await self.ensure(conn, PLATFORM_ISSUER_ID, PLATFORM_ACCOUNT, meta)

    async def rotate(self, now_ms: int, issuer_ids: list[str] | None = None) -> dict[str, Plan]:
        """Rotate every issuer (or the given ones) that is due at `now_ms`; one transaction per
        issuer, re-planned under the issuer's lock so that concurrent rotators agree."""
        done: dict[str, Plan] = {}
        for issuer_id in issuer_ids if issuer_ids is not None else await self._due(now_ms):
            async with self.pool.connection() as conn, conn.transaction():
                account_id = await self._account_of(conn, issuer_id)
                if account_id is None:
                    continue
                meta = Meta(account_id=account_id, issuer_id=issuer_id, trigger="system")
                outcome = await self._converge(conn, issuer_id, account_id, meta, now_ms)
            if not outcome.empty:
                done[issuer_id] = outcome
        return done

    async def retire_all(
        self, conn: psycopg.AsyncConnection[Any], issuer_id: str, meta: Meta
    ) -> None:
        """The issuer is gone: every key leaves the JWKS and its private half is destroyed."""
        await conn.execute(self.sql.lock_issuer, [issuer_id])
        active = await self._active(conn, issuer_id)
        now = self.clock.now_ms()
        for key in active:
            await self._retire(conn, key.kid, "issuer_deleted", meta, now)
        await conn.execute(self.sql.notify, [self.sql.channel, issuer_id])

    async def _converge(
        self,
        conn: psycopg.AsyncConnection[Any],
        issuer_id: str,
        account_id: str,
        meta: Meta,
        now: int,
    ) -> Plan:
        await conn.execute(self.sql.lock_issuer, [issuer_id])
        todo = plan(await self._active(conn, issuer_id), now)
        for alg in todo.create:
            await self._create(conn, issuer_id, account_id, alg, meta, now)
        for kid in todo.retire:
            await self._retire(conn, kid, "rotated", meta, now)
        if not todo.empty:
            await conn.execute(self.sql.notify, [self.sql.channel, issuer_id])
        return todo

    async def _create(
        self,
        conn: psycopg.AsyncConnection[Any],
        issuer_id: str,
        account_id: str,
        alg: str,
        meta: Meta,
        now: int,
    ) -> None:
        kid = str(self.ids.event_uuid())
        key = await asyncio.to_thread(generate, alg)
        wrapped_dek, ciphertext = wrap_private(self.kek, kid, key)
        cmd = CreateSigningKey(
            kid=kid,
            issuer_id=issuer_id,
            account_id=account_id,
            alg=alg,
            public_jwk=public_jwk(key, kid, alg),
            created_at=now,
        )
        if await self._run(conn, kid, cmd, meta):
            await conn.execute(self.sql.insert_secret, [kid, issuer_id, wrapped_dek, ciphertext])

    async def _retire(
        self, conn: psycopg.AsyncConnection[Any], kid: str, reason: str, meta: Meta, now: int
    ) -> None:
        await self._run(conn, kid, RetireSigningKey(reason=reason, retired_at=now), meta)
        await conn.execute(self.sql.delete_secret, [kid])

    async def _run(
        self,
        conn: psycopg.AsyncConnection[Any],
        kid: str,
        cmd: signing_key.SigningKeyCommand,
        meta: Meta,
    ) -> list[StoredEvent]:
        """Load, decide, append and project one key stream on the caller's connection."""
        history = await self.store.load(conn, kid)
        state = fold(signing_key, history)
        stored = await self.store.append(
            conn, kid, len(history), signing_key.decide(cmd, state), meta
        )
        for event in stored:
            await self.view.apply(conn, event)
        return stored

    async def _active(self, conn: psycopg.AsyncConnection[Any], issuer_id: str) -> list[KeyAge]:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(self.sql.active_keys, [issuer_id])
        return [KeyAge(kid=r[0], alg=r[2], created_at=r[4]) for r in await cur.fetchall()]

    async def _account_of(self, conn: psycopg.AsyncConnection[Any], issuer_id: str) -> str | None:
        cur = await conn.execute(self.sql.issuer, [issuer_id])
        row = await cur.fetchone()
        return None if row is None else str(row[1])

    async def _due(self, now_ms: int) -> list[str]:
        """Issuers whose plan is not empty at `now_ms`, from one read of every active key."""
        async with self.pool.connection() as conn:
            issuers = [
                str(r[0]) for r in await (await conn.execute(self.sql.issuer_ids)).fetchall()
            ]
            cur = await conn.execute(self.sql.all_active_keys)
            rows = await cur.fetchall()
        keys: dict[str, list[KeyAge]] = {issuer_id: [] for issuer_id in issuers}
        for issuer_id, kid, alg, created_at in rows:
            keys.setdefault(issuer_id, []).append(KeyAge(kid=kid, alg=alg, created_at=created_at))
        return [issuer_id for issuer_id in issuers if not plan(keys[issuer_id], now_ms).empty]

    async def rotation_task(self, stop: asyncio.Event, interval: float = 60.0) -> None:
        """Background task: rotate whatever is due by the injected clock, then wait."""
        while not stop.is_set():
            await self.rotate(self.clock.now_ms())
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                continue
