"""Idempotency keys (core-api.md 2.4): the store behind the gateway's idempotency layer.

A key is scoped per account and, inside it, per principal (`Principal.credential_id`: one API
key, one personal token or one console user), and lives 24 h from first use: a principal never
gets a response that another principal's request produced. The first request claims it (state
`in_progress`, with a lease so that a crashed attempt does not hold it for a day); a 2xx response
completes it with the status, the replayed headers and the body (AES-GCM sealed by `replay_keys`:
a response may hold a one-time secret, or a user's PII, which is sealed under that user's own
replay key; over 512 KB only the status is kept); any other outcome releases it. The claim is one
INSERT … ON CONFLICT, so of many concurrent identical requests exactly one runs.

A completed record names the resource its replay is about (`resource_of`): the path's user for
routes below a user, else the id of the object the response carries. When a user is deleted, the
gateway's `gateway-directory` consumer purges the records about that user and destroys the
user's replay key (crypto-shredding, DESIGN.md 7): a replay of a user create or update holds the
user's email and profile. A record completed after that keeps no body (no key is made for a user
the gateway knows is deleted)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from authpi.crypto.clock import Clock
from authpi.crypto.envelope import Kek
from authpi.gateway.edge.replay_keys import ReplaySeal
from authpi.observability import get_logger
from authpi.web.body import check_depth

log = get_logger("authpi.gateway.idempotency")

TTL_MS = 24 * 3600 * 1000
LEASE_MS = 5 * 60 * 1000  # an in-progress claim older than this is taken over
MAX_STORED_BODY = 512 * 1024
SWEEP_EVERY_S = 600.0


class Claimed(msgspec.Struct, frozen=True):
    owner: uuid.UUID


class InProgress(msgspec.Struct, frozen=True):
    pass


class Mismatch(msgspec.Struct, frozen=True):
    pass


class Stored(msgspec.Struct, frozen=True):
    status: int
    headers: list[tuple[str, str]]
    body: bytes


Claim = Claimed | InProgress | Mismatch | Stored


class _Identified(msgspec.Struct):
    id: str | None = None


class _Enveloped(msgspec.Struct):
    data: _Identified | None = None
    id: str | None = None


def resource_of(path_params: Mapping[str, Any], body: bytes) -> str | None:
    """The resource a response is about: the path's `user_id`, else the id of the object the
    body carries (`{"data": {"id": …}}`, core-api.md 2.1, or a bare object's `id`)."""
    user_id = path_params.get("user_id")
    if isinstance(user_id, str) and user_id:
        return user_id
    try:
        parsed = msgspec.json.decode(body, type=_Enveloped)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return parsed.data.id if parsed.data is not None and parsed.data.id else parsed.id


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 over method, path (no query) and the body as canonical JSON (sorted keys). A body
    nested too deeply is refused (400) before it is parsed."""
    check_depth(body)
    try:
        canonical = msgspec.json.encode(msgspec.json.decode(body), order="sorted")
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256(f"{method}\n{path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


class IdempotencyStore:
    def __init__(self, pool: AsyncConnectionPool, schema: str, clock: Clock, kek: Kek) -> None:
        self._pool = pool
        self._clock = clock
        self._seal = ReplaySeal(schema, kek)
        t = sql.Identifier(schema, "idempotency_keys")
        self._claim = sql.SQL(
            "INSERT INTO {0} AS k (scope_id, principal_id, key, owner, fingerprint, state,"
            " lease_until, expires_at, created_at) VALUES (%(scope_id)s, %(principal_id)s,"
            " %(key)s, %(owner)s, %(fp)s, 'in_progress', %(lease)s, %(expires)s, %(now)s)"
            " ON CONFLICT (scope_id, principal_id, key) DO UPDATE SET owner = EXCLUDED.owner,"
            " fingerprint = EXCLUDED.fingerprint, state = 'in_progress', status = NULL,"
            " headers = NULL, body = NULL, resource_id = NULL, lease_until = EXCLUDED.lease_until,"
            " expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at"
            " WHERE k.expires_at <= %(now)s"
            " OR (k.state = 'in_progress' AND k.lease_until <= %(now)s)"
            " RETURNING owner"
        ).format(t)
        self._read = sql.SQL(
            "SELECT fingerprint, state, status, headers, body, resource_id FROM {}"
            " WHERE scope_id = %s AND principal_id = %s AND key = %s"
        ).format(t)
        self._complete = sql.SQL(
            "UPDATE {} SET state = 'completed', status = %s, headers = %s::jsonb, body = %s,"
            " resource_id = %s WHERE scope_id = %s AND principal_id = %s AND key = %s"
            " AND owner = %s"
        ).format(t)
        self._release = sql.SQL(
            "DELETE FROM {} WHERE scope_id = %s AND principal_id = %s AND key = %s AND owner = %s"
        ).format(t)
        self._sweep = sql.SQL("DELETE FROM {} WHERE expires_at <= %s").format(t)
        self._bodies = sql.SQL(
            "SELECT principal_id, key, body, resource_id FROM {}"
            " WHERE scope_id = %s AND body IS NOT NULL ORDER BY key, principal_id"
        ).format(t)

    async def claim(self, scope_id: str, principal_id: str, key: str, fp: str) -> Claim:
        for _ in range(3):  # a released row between INSERT and SELECT: claim again
            owner = uuid.uuid4()
            now = self._clock.now_ms()
            params = {"scope_id": scope_id, "principal_id": principal_id, "key": key,
                      "owner": owner, "fp": fp, "now": now, "lease": now + LEASE_MS,
                      "expires": now + TTL_MS}  # fmt: skip
            async with self._pool.connection() as conn:
                cur = await conn.execute(self._claim, params)
                if await cur.fetchone() is not None:
                    return Claimed(owner)
                cur = await conn.execute(self._read, [scope_id, principal_id, key])
                row = await cur.fetchone()
                if row is not None:
                    return await self._existing(conn, _aad(scope_id, principal_id, key), fp, row)
        return InProgress()

    async def _existing(self, conn: Any, aad: bytes, fp: str, row: tuple[Any, ...]) -> Claim:
        stored_fp, state, status, headers, body, resource_id = row
        if stored_fp != fp:
            return Mismatch()
        if state != "completed":
            return InProgress()
        plain = await self._seal.unseal(conn, body, aad, resource_id)
        return Stored(status=status, headers=[(n, v) for n, v in headers], body=plain)

    async def complete(
        self,
        scope_id: str,
        principal_id: str,
        key: str,
        owner: uuid.UUID,
        response: Stored,
        resource_id: str | None = None,
    ) -> None:
        body = response.body if len(response.body) <= MAX_STORED_BODY else b""
        headers = msgspec.json.encode(response.headers).decode()
        async with self._pool.connection() as conn:
            aad = _aad(scope_id, principal_id, key)
            sealed = await self._seal.seal(conn, body, aad, resource_id)
            params = [response.status, headers, sealed, resource_id, scope_id, principal_id, key,
                      owner]  # fmt: skip
            await conn.execute(self._complete, params)

    async def release(self, scope_id: str, principal_id: str, key: str, owner: uuid.UUID) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(self._release, [scope_id, principal_id, key, owner])

    async def replay_bodies(self, scope_id: str) -> list[tuple[str, bytes]]:
        """(key, clear body) of every stored replay of an account, all principals (support and
        tests)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._bodies, [scope_id])
            rows = await cur.fetchall()
            return [
                (key, await self._seal.unseal(conn, body, _aad(scope_id, who, key), resource_id))
                for who, key, body, resource_id in rows
            ]

    async def sweep(self) -> int:
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._sweep, [self._clock.now_ms()])
            return cur.rowcount

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        """Background task: drop expired keys (expired rows are ignored meanwhile)."""
        while not stop.is_set():
            removed = await self.sweep()
            if removed:
                log.info("idempotency.swept", removed=removed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=SWEEP_EVERY_S)


def _aad(scope_id: str, principal_id: str, key: str) -> bytes:
    return f"{scope_id}\x00{principal_id}\x00{key}".encode()
