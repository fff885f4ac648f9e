"""The per-process key cache: every issuer the token service knows, its published JWKS (encoded
once, with its ETag) and the current signing key per algorithm, unwrapped. Loaded from the token
schema at start and kept current by LISTEN on the schema's key channel; requests never touch the
database.

Read-your-writes (messaging.sync): `reach(seq)` waits until the token-issuers projection has
applied the stream up to `seq` (its checkpoint, read in the statement that also sends a fence
notice of its own on the key channel), then waits until this cache has handled that notice.
Notices arrive in commit order, and each projection transaction notifies in the same commit as
its checkpoint, so by then every issuer change up to `seq` is in memory."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

import jwt
import msgspec
import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from authpi.crypto.envelope import Kek
from authpi.messaging.stopping import unless_stopped
from authpi.messaging.sync import type_matches
from authpi.token.queries.keys import Sql
from authpi.token.signing.keys import PrivateKey, unwrap_private

FENCE = "fence:"  # a notice payload that is no issuer id: a read-your-writes fence


class Signer(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    alg: str
    key: Any  # PrivateKey


class IssuerKeys(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    account_id: str
    status: str
    available_scopes: list[str]
    access_token_ttl: int
    refresh_token_ttl: int
    id_token_ttl: int
    signing_algs: list[str]
    default_alg: str
    jwks: bytes  # the encoded JWKS document
    jwks_etag: str
    signers: dict[str, Signer]  # alg -> the newest key of that algorithm
    public: dict[str, Any] = {}  # kid -> PyJWK of every published key (verification)
    # Session lifetimes in seconds (issuers_view, the same row): a code exchange needs them.
    session_max_age: int = 7 * 24 * 3600
    session_idle_timeout: int = 12 * 3600


class KeyCache:
    def __init__(self, pool: AsyncConnectionPool, dsn: str, kek: Kek, queries: Sql) -> None:
        self.pool = pool
        self.dsn = dsn
        self.kek = kek
        self.sql = queries
        self._issuers: dict[str, IssuerKeys] = {}
        self._private: dict[str, PrivateKey] = {}
        self.warm = asyncio.Event()  # set once `follow` has loaded every issuer
        self._fences: dict[str, asyncio.Future[None]] = {}
        self._noticed: asyncio.Future[None] | None = None  # resolved at the next notice

    name = "key-cache"

    def takes(self, event_type: str) -> bool:
        return type_matches("issuer.*", event_type)

    async def reach(self, seq: int, timeout: float) -> bool:
        """Until every issuer change up to stream sequence `seq` is in this cache."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        fence = ""
        try:
            while True:
                noticed = self._next_notice()
                self._fences.pop(fence, None)
                fence = f"{FENCE}{uuid.uuid4().hex}"  # a fresh one: an earlier one may be heard
                self._fences[fence] = loop.create_future()
                # One statement: the checkpoint, and a fence notice sent when it commits.
                async with self.pool.connection() as conn:
                    cur = await conn.execute(self.sql.issuers_fence, [self.sql.channel, fence])
                    row = await cur.fetchone()
                if row is not None and int(row[0]) >= seq:
                    break
                await asyncio.wait_for(asyncio.shield(noticed), deadline - loop.time())
            await asyncio.wait_for(asyncio.shield(self._fences[fence]), deadline - loop.time())
            return True
        except TimeoutError:
            return False
        finally:
            self._fences.pop(fence, None)

    def _next_notice(self) -> asyncio.Future[None]:
        if self._noticed is None or self._noticed.done():
            self._noticed = asyncio.get_running_loop().create_future()
        return self._noticed

    def _handled(self, payload: str) -> None:
        fence = self._fences.get(payload)
        if fence is not None and not fence.done():
            fence.set_result(None)
        if self._noticed is not None and not self._noticed.done():
            self._noticed.set_result(None)

    def get(self, issuer_id: str) -> IssuerKeys | None:
        return self._issuers.get(issuer_id)

    async def load_all(self) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.sql.issuer_ids)
            ids = [str(r[0]) for r in await cur.fetchall()]
            for issuer_id in ids:
                await self._reload(conn, issuer_id)
        for gone in set(self._issuers) - set(ids):
            self._issuers.pop(gone, None)

    async def reload(self, issuer_id: str) -> None:
        async with self.pool.connection() as conn:
            await self._reload(conn, issuer_id)

    async def follow(self, stop: asyncio.Event) -> None:
        """Background task: LISTEN first, then load everything, then reload on each notice, so
        that no change between the load and the first notice is missed."""
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(self.sql.listen)
            await self.load_all()
            self.warm.set()
            await unless_stopped(self._on_notices(conn), stop)

    async def _on_notices(self, conn: psycopg.AsyncConnection[Any]) -> None:
        async for note in conn.notifies():
            if not note.payload.startswith(FENCE):
                await self.reload(note.payload)
            self._handled(note.payload)

    async def _reload(self, conn: psycopg.AsyncConnection[Any], issuer_id: str) -> None:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(self.sql.issuer, [issuer_id])
        row = await cur.fetchone()
        if row is None:
            self._forget(self._issuers.pop(issuer_id, None), {})
            return
        await cur.execute(self.sql.active_keys, [issuer_id])
        keys = await cur.fetchall()
        signers: dict[str, Signer] = {}
        for kid, _, alg, _, _ in keys:  # newest first
            if alg not in signers:
                signers[alg] = Signer(kid=kid, alg=alg, key=await self._private_key(conn, kid))
        self._forget(self._issuers.get(issuer_id), signers)
        jwks = msgspec.json.encode({"keys": [k[3] for k in keys]})
        self._issuers[issuer_id] = IssuerKeys(
            issuer_id=issuer_id,
            account_id=row[1],
            status=row[2],
            available_scopes=list(row[3]),
            access_token_ttl=row[4],
            refresh_token_ttl=row[5],
            id_token_ttl=row[6],
            signing_algs=list(row[9]),
            default_alg=row[10],
            jwks=jwks,
            jwks_etag=f'"{hashlib.sha256(jwks).hexdigest()[:32]}"',
            signers=signers,
            public={k[0]: jwt.PyJWK(k[3]) for k in keys},
            session_max_age=row[7],
            session_idle_timeout=row[8],
        )

    def _forget(self, old: IssuerKeys | None, signers: dict[str, Signer]) -> None:
        """Drop unwrapped keys that no longer sign (rotated out or retired)."""
        if old is None:
            return
        current = {s.kid for s in signers.values()}
        for signer in old.signers.values():
            if signer.kid not in current:
                self._private.pop(signer.kid, None)

    async def _private_key(self, conn: psycopg.AsyncConnection[Any], kid: str) -> PrivateKey:
        if kid not in self._private:
            cur = await conn.execute(self.sql.secret, [kid])
            row = await cur.fetchone()
            if row is None:
                raise LookupError(f"signing key {kid} has no private half")
            self._private[kid] = unwrap_private(self.kek, kid, row[0], row[1])
        return self._private[kid]
