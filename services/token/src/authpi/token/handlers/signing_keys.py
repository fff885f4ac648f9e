"""The write path of signing keys (idp-api.md 13): per issuer, a key for every algorithm it lacks,
rotation on the plan (authpi.token.domain.rotation) and retirement of a deleted issuer's keys.
Each change to an issuer's key set is one `execute_all` of the event store: the plan is read
under the issuer's advisory lock (so concurrent rotators agree), each key is its own stream, and
in the same transaction a reaction stores each new key's private half, wrapped by the KEK, in
signing_key_secrets (the `signing-key.created` event carries the public JWK only), deletes the
private half of each retired key and notifies the key caches."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from authpi.contracts.base import Meta
from authpi.contracts.console import PLATFORM_ACCOUNT, PLATFORM_ISSUER_ID
from authpi.contracts.token import SigningKeyCreated, SigningKeyRetired
from authpi.eventstore.store import EventStore, Step, Tx
from authpi.token.domain import signing_key
from authpi.token.domain.commands import CreateSigningKey, RetireSigningKey
from authpi.token.domain.rotation import KeyAge, Plan, plan
from authpi.token.queries.keys import Sql
from authpi.token.signing.keygen import KeyMaker
from authpi.token.signing.keys import public_jwk, wrap_private
from authpi.web.runtime import Runtime


class KeyRing:
    def __init__(self, rt: Runtime, store: EventStore, queries: Sql) -> None:
        self.pool = rt.pool
        self.kek = rt.kek
        self.ids = rt.ids
        self.clock = rt.clock
        self.store = store
        self.sql = queries
        self.maker = KeyMaker()  # its `run` is one of the service's singleton tasks

    async def ensure(
        self, conn: psycopg.AsyncConnection[Any], issuer_id: str, account_id: str, meta: Meta
    ) -> Plan:
        """Inside the caller's transaction: keys for every algorithm the issuer lacks."""
        work = _IssuerKeys(self, issuer_id, account_id, self.clock.now_ms())
        return await work.run(meta, conn)

    async def ensure_platform_issuer(self) -> None:
        """AuthPI's own issuer (console users' tokens) is not a customer resource, so no
        directory event announces it: the token service keeps it with fixed defaults and gives
        it keys like any other issuer. Idempotent, and safe in concurrent processes (the issuer
        lock serialises the key plan)."""
        meta = Meta(account_id=PLATFORM_ACCOUNT, issuer_id=PLATFORM_ISSUER_ID, trigger="system")
        async with self.pool.connection() as conn:
            await conn.execute(
                self.sql.platform_issuer,
                [PLATFORM_ISSUER_ID, PLATFORM_ACCOUNT, self.clock.now_ms()],
            )
        work = _IssuerKeys(self, PLATFORM_ISSUER_ID, PLATFORM_ACCOUNT, self.clock.now_ms())
        await work.run(meta)

    async def rotate(self, now_ms: int, issuer_ids: list[str] | None = None) -> dict[str, Plan]:
        """Rotate every issuer (or the given ones) that is due at `now_ms`; one transaction per
        issuer, re-planned under the issuer's lock so that concurrent rotators agree."""
        done: dict[str, Plan] = {}
        for issuer_id in issuer_ids if issuer_ids is not None else await self._due(now_ms):
            account_id = await self._account_of(issuer_id)
            if account_id is None:
                continue
            meta = Meta(account_id=account_id, issuer_id=issuer_id, trigger="system")
            outcome = await _IssuerKeys(self, issuer_id, account_id, now_ms).run(meta)
            if not outcome.empty:
                done[issuer_id] = outcome
        return done

    async def retire_all(
        self, conn: psycopg.AsyncConnection[Any], issuer_id: str, meta: Meta
    ) -> Plan:
        """Inside the caller's transaction: the issuer is gone, so every key leaves the JWKS and
        its private half is destroyed."""
        work = _IssuerKeys(self, issuer_id, meta.account_id, self.clock.now_ms(), retire_all=True)
        return await work.run(meta, conn)

    async def active(self, conn: psycopg.AsyncConnection[Any], issuer_id: str) -> list[KeyAge]:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(self.sql.active_keys, [issuer_id])
        return [KeyAge(kid=r[0], alg=r[2], created_at=r[4]) for r in await cur.fetchall()]

    async def _account_of(self, issuer_id: str) -> str | None:
        async with self.pool.connection() as conn:
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


class _IssuerKeys:
    """One transaction's change to an issuer's keys: the issuer's lock (`prepare`), the plan read
    under it as one step per key stream (`steps`, run again on a retry), and the reactions in
    the same transaction (private halves, the key caches' notice)."""

    def __init__(
        self,
        ring: KeyRing,
        issuer_id: str,
        account_id: str,
        now: int,
        *,
        retire_all: bool = False,
    ) -> None:
        self.ring = ring
        self.issuer_id = issuer_id
        self.account_id = account_id
        self.now = now
        self.retire_all = retire_all
        self.plan = Plan(create=[], retire=[])
        self.secrets: dict[str, tuple[str, str]] = {}  # kid -> (wrapped data key, ciphertext)

    async def run(self, meta: Meta, conn: psycopg.AsyncConnection[Any] | None = None) -> Plan:
        await self.ring.store.execute_all(
            self.steps,
            meta,
            reactions=[self.keep_secrets, self.notify],
            prepare=self.lock,
            conn=conn,
        )
        return self.plan

    async def lock(self, tx: Tx) -> None:
        await tx.conn.execute(self.ring.sql.lock_issuer, [self.issuer_id])

    async def steps(self, tx: Tx) -> list[Step[Any, Any]]:
        active = await self.ring.active(tx.conn, self.issuer_id)
        if self.retire_all:
            self.plan, reason = Plan(create=[], retire=[k.kid for k in active]), "issuer_deleted"
        else:
            self.plan, reason = plan(active, self.now), "rotated"
        self.secrets = {}
        steps: list[Step[Any, Any]] = []
        for alg in self.plan.create:
            kid, create = await self._new_key(alg)
            steps.append(Step(kid, signing_key, create))
        retire = RetireSigningKey(reason=reason, retired_at=self.now)
        steps += [Step(kid, signing_key, retire) for kid in self.plan.retire]
        return steps

    async def _new_key(self, alg: str) -> tuple[str, CreateSigningKey]:
        kid = str(self.ring.ids.event_uuid())
        key = await self.ring.maker.make(alg)
        self.secrets[kid] = wrap_private(self.ring.kek, kid, key)
        return kid, CreateSigningKey(
            kid=kid,
            issuer_id=self.issuer_id,
            account_id=self.account_id,
            alg=alg,
            public_jwk=public_jwk(key, kid, alg),
            created_at=self.now,
        )

    async def keep_secrets(self, tx: Tx) -> None:
        """A created key's private half is stored, a retired key's destroyed, in the same
        transaction as its event."""
        sql = self.ring.sql
        for stored in tx.events:
            match stored.event:
                case SigningKeyCreated(kid=kid) if kid in self.secrets:
                    wrapped_dek, ciphertext = self.secrets[kid]
                    await tx.conn.execute(
                        sql.insert_secret, [kid, self.issuer_id, wrapped_dek, ciphertext]
                    )
                case SigningKeyRetired(kid=kid):
                    await tx.conn.execute(sql.delete_secret, [kid])
                case _:
                    continue

    async def notify(self, tx: Tx) -> None:
        """Every key cache reloads the issuer once this transaction commits."""
        await tx.conn.execute(self.ring.sql.notify, [self.ring.sql.channel, self.issuer_id])
