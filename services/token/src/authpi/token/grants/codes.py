"""Authorization codes and login flows (idp-api.md 4.4): ephemeral rows, not state worth events.

A code is 32 random bytes (base62); only its SHA-256 is stored, with everything it is bound to
(client, exact redirect URI, PKCE challenge, scopes, nonce, resources, selected org, op session,
user and auth_time). It lives 60 seconds and is used once: the exchange's transaction (the one
that opens the rp session and the refresh family) marks it used in one conditional UPDATE,
together with the ids of what it issues (rp session, refresh family, access-token jti). A
concurrent second exchange waits on that row, finds it used and rolls back; any later
presentation finds exactly which tokens to revoke, already committed."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from authpi.crypto.ids import base62_secret
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import Reaction, Tx

CODE_TTL_S = 60


class CodeUsed(Exception):
    """The code was consumed by another exchange."""


class CodeGrant(msgspec.Struct, frozen=True, kw_only=True):
    """What a code is bound to."""

    issuer_id: str
    account_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str | None
    scopes: list[str]
    nonce: str | None
    resources: list[str]
    org: str | None
    op_session_id: str
    user_id: str
    auth_time: int  # Unix ms of the user's authentication
    auth_method: str
    device: dict[str, str] = {}
    redirect_uri_given: bool = True  # /authorize named it: /token must repeat it


class StoredCode(msgspec.Struct, frozen=True, kw_only=True):
    grant: CodeGrant
    expires_at: int
    used_at: int | None
    session_id: str | None
    family_id: str | None
    access_jti: str | None
    access_expires_at: int | None


def _stored(columns: Sequence[Any]) -> StoredCode:
    """A StoredCode from its columns, in the order `read` and `read_many` select them."""
    grant, expires_at, used_at, session_id, family_id, access_jti, access_expires_at = columns
    return StoredCode(
        grant=_grant.decode(grant), expires_at=expires_at, used_at=used_at,
        session_id=session_id, family_id=family_id, access_jti=access_jti,
        access_expires_at=access_expires_at,
    )  # fmt: skip


class Issued(msgspec.Struct, frozen=True, kw_only=True):
    """The ids an exchange will issue, recorded when it consumes the code."""

    session_id: str
    family_id: str | None
    access_jti: str
    access_expires_at: int


def code_digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


_grant = msgspec.json.Decoder(CodeGrant)


class Codes:
    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self.pool = pool

        def q(text: str) -> Any:
            return render(text, schema=schema)  # type: ignore[arg-type]

        self._insert = q(
            "INSERT INTO {schema}.authorization_codes (code_sha256, issuer_id, client_id, data,"
            " expires_at) VALUES (%s, %s, %s, %s::jsonb, %s)"
        )
        self._read = q(
            "SELECT data::text, expires_at, used_at, session_id, family_id, access_jti,"
            " access_expires_at FROM {schema}.authorization_codes"
            " WHERE code_sha256 = %s AND issuer_id = %s"
        )
        self._read_many = q(
            "SELECT code_sha256, issuer_id, data::text, expires_at, used_at, session_id,"
            " family_id, access_jti, access_expires_at FROM {schema}.authorization_codes"
            " WHERE code_sha256 = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))"
        )
        # Many exchanges' consumptions (handlers.code_exchanges): the codes it did not mark
        # were used meanwhile (each waits on its row until the transaction that holds it ends).
        self._consume_many = q(
            "UPDATE {schema}.authorization_codes c SET used_at = u.at, session_id = u.sid,"
            " family_id = u.fid, access_jti = u.jti, access_expires_at = u.exp"
            " FROM json_to_recordset(%s::json) AS u(code text, at bigint, sid text, fid text,"
            " jti text, exp bigint) WHERE c.code_sha256 = u.code"
            " AND c.code_sha256 = ANY(ARRAY(SELECT json_array_elements(%s::json) ->> 'code'))"
            " AND c.used_at IS NULL RETURNING c.code_sha256"
        )
        self._consume = q(
            "UPDATE {schema}.authorization_codes SET used_at = %s, session_id = %s,"
            " family_id = %s, access_jti = %s, access_expires_at = %s"
            " WHERE code_sha256 = %s AND used_at IS NULL RETURNING 1"
        )

    async def issue(
        self, conn: psycopg.AsyncConnection[Any] | None, grant: CodeGrant, now: int
    ) -> str:
        code = base62_secret(32)
        params = [
            code_digest(code),
            grant.issuer_id,
            grant.client_id,
            jsonb.dumps(grant),
            now + CODE_TTL_S * 1000,
        ]
        if conn is None:
            async with self.pool.connection() as own:
                await own.execute(self._insert, params)
        else:
            await conn.execute(self._insert, params)
        return code

    async def read(
        self, issuer_id: str, code: str, conn: psycopg.AsyncConnection[Any] | None = None
    ) -> StoredCode | None:
        """The code's grant and use, on `conn` (an exchange's own transaction) or on its own."""
        if conn is None:
            async with self.pool.connection() as own:
                return await self.read(issuer_id, code, own)
        cur = await conn.execute(self._read, [code_digest(code), issuer_id])
        row = await cur.fetchone()
        if row is None:
            return None
        return _stored(row)

    async def read_many(
        self, conn: psycopg.AsyncConnection[Any], codes: list[tuple[str, str]]
    ) -> dict[str, StoredCode]:
        """`read` of many (issuer id, code) in one statement, by code; an unknown code, or one
        of another issuer, is absent."""
        digests = {code_digest(code): (issuer_id, code) for issuer_id, code in codes}
        cur = await conn.execute(self._read_many, [jsonb.dumps(list(digests))])
        found: dict[str, StoredCode] = {}
        for row in await cur.fetchall():
            issuer_id, code = digests[row[0]]
            if row[1] != issuer_id:
                continue
            found[code] = _stored(row[2:])
        return found

    async def consume_many(
        self, conn: psycopg.AsyncConnection[Any], uses: list[tuple[str, Issued, int]]
    ) -> set[str]:
        """Mark the codes of (code, what it issues, now) used in one statement; the codes
        another transaction used first (its commit seen once it released the row)."""
        if not uses:
            return set()
        digests = {code_digest(code): code for code, _, _ in uses}
        # One JSON document rather than six arrays: psycopg dumps arrays element by element.
        doc = jsonb.dumps(
            [
                {"code": code_digest(code), "at": now, "sid": i.session_id,
                 "fid": i.family_id, "jti": i.access_jti, "exp": i.access_expires_at}
                for code, i, now in uses
            ]
        )  # fmt: skip
        cur = await conn.execute(self._consume_many, [doc, doc])
        marked = {row[0] for row in await cur.fetchall()}
        return {code for digest, code in digests.items() if digest not in marked}

    def consumption(self, code: str, issued: Issued, now: int) -> Reaction:
        """A reaction of the exchange's transaction: mark the code used, recording what is
        issued from it. When another request used it first (its transaction holds the row until
        it commits), CodeUsed rolls this one back: nothing is issued twice."""

        async def consume(tx: Tx) -> None:
            cur = await tx.conn.execute(
                self._consume,
                [
                    now,
                    issued.session_id,
                    issued.family_id,
                    issued.access_jti,
                    issued.access_expires_at,
                    code_digest(code),
                ],
            )
            if await cur.fetchone() is None:  # fetched: rowcount is unknown in pipeline mode
                raise CodeUsed()

        return consume


class Flows:
    """Login flows: a validated /authorize request waiting for the user (30 minutes)."""

    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self.pool = pool

        def q(text: str) -> Any:
            return render(text, schema=schema)  # type: ignore[arg-type]

        self._insert = q(
            "INSERT INTO {schema}.login_flows (id, issuer_id, data, expires_at)"
            " VALUES (%s, %s, %s::jsonb, %s)"
        )
        self._read = q(
            "SELECT data::text FROM {schema}.login_flows WHERE id = %s AND issuer_id = %s"
            " AND expires_at > %s"
        )
        self._delete = q("DELETE FROM {schema}.login_flows WHERE id = %s AND issuer_id = %s")

    async def save(
        self, flow_id: str, issuer_id: str, data: msgspec.Struct, expires_at: int
    ) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(self._insert, [flow_id, issuer_id, jsonb.dumps(data), expires_at])

    async def load(self, flow_id: str, issuer_id: str, now: int) -> str | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._read, [flow_id, issuer_id, now])
            row = await cur.fetchone()
        return row[0] if row else None

    async def finish(self, flow_id: str, issuer_id: str) -> bool:
        """Delete the flow; False when it was already finished (a replayed continuation)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._delete, [flow_id, issuer_id])
            return cur.rowcount == 1
