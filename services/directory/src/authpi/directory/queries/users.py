"""Read-side SQL over users_view and personal_tokens_view, and the issuer check every route under
`/issuers/{issuer_id}` starts with (`IssuerCheck`: the one place that knows where issuers live).
A user's data key is read from the region's PII key store (`authpi.crypto.pii`)."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row

from authpi.crypto.pii import PiiVault
from authpi.eventstore.reads import reading
from authpi.eventstore.sqltext import render
from authpi.web.pagination import SortKey, time_id_key


class UserIndexRow(msgspec.Struct, frozen=True, kw_only=True):
    """A users_view row without its PII: what lists return (core-api.md 3.9)."""

    id: str
    account_id: str
    issuer_id: str
    username_hash: str
    username_type: str
    status: str
    region: str
    store_id: str
    scopes: list[str]
    metadata: dict[str, Any]
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    created_at: int
    updated_at: int | None


class UserRow(UserIndexRow, frozen=True, kw_only=True):
    """A user with its PII opened (no username and empty objects once its key is shredded)."""

    username: str | None
    profile: dict[str, Any]
    custom_fields: dict[str, Any]
    addresses: list[dict[str, Any]]
    approval: dict[str, Any] | None = None  # the signup approval record (core-api.md 3.10)


# The columns of UserIndexRow: a list reads no PII at all, not even sealed.
_INDEX_COLUMNS = (
    "id, account_id, issuer_id, username_hash, username_type, status, region, store_id, scopes,"
    " metadata, status_at, status_reason, status_by, created_at, updated_at"
)


class TokenRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    issuer_id: str
    user_id: str
    name: str
    description: str | None
    tags: list[str]
    scopes: list[str]
    audience: str | None
    expires_at: int | None
    metadata: dict[str, Any]
    jti: str
    token_sha256: str
    token_hint: str
    status: str
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    created_at: int
    updated_at: int | None


class IssuerCheck:
    """Whether an issuer exists in an account. It reads the issuers' projection (issuers_view);
    until that table exists no issuer does."""

    def __init__(self, schema: str) -> None:
        self._exists = render(
            "SELECT 1 FROM {schema}.issuers_view WHERE id = %s AND account_id = %s", schema=schema
        )
        self._mode = render(
            "SELECT settings -> 'access' ->> 'mode' FROM {schema}.issuers_view"
            " WHERE id = %s AND account_id = %s",
            schema=schema,
        )

    async def signup_mode(self, pool: Any, account_id: str, issuer_id: str) -> str | None:
        """The issuer's signup mode (settings.access.mode; `open` when unset), or None when the
        account has no such issuer."""
        async with pool.connection() as conn:
            try:
                cur = await conn.execute(self._mode, [issuer_id, account_id])
            except psycopg.errors.UndefinedTable:
                return None
            row = await cur.fetchone()
        return None if row is None else (row[0] or "open")

    async def exists(self, pool: Any, account_id: str, issuer_id: str) -> bool:
        async with reading(pool) as conn:
            return await self.exists_on(conn, account_id, issuer_id)

    async def exists_on(
        self, conn: psycopg.AsyncConnection[Any], account_id: str, issuer_id: str
    ) -> bool:
        """`exists` on the caller's connection: a read that goes on with other queries takes
        one connection from the pool and one commit, not two."""
        try:
            cur = await conn.execute(self._exists, [issuer_id, account_id])
        except psycopg.errors.UndefinedTable:
            return False
        return await cur.fetchone() is not None


_STATUS_FILTER = "AND (%(status)s::text IS NULL AND status <> 'deleted' OR status = %(status)s)"


class UserQueries:
    def __init__(self, schema: str, pii_store: str) -> None:
        # One round trip: the row with its sealed PII and the user's wrapped data key, from the
        # region's PII key store (`pii_store`, the schema of the vault `user` is given).
        self._pii_store = pii_store
        self._user = render(
            "SELECT u.*, k.wrapped_key FROM {schema}.users_view u"
            " LEFT JOIN {pii}.pii_keys k ON k.subject_id = u.id WHERE u.id = %s",
            schema=schema,
            pii=pii_store,
        )
        self._pending = render(
            "SELECT " + _INDEX_COLUMNS + " FROM {schema}.users_view WHERE issuer_id = %(issuer)s"
            " AND status = 'pending_approval'"
            " AND (%(at)s::bigint IS NULL OR (created_at, id) > (%(at)s, %(id)s))"
            " ORDER BY created_at, id LIMIT %(limit)s",
            schema=schema,
        )
        self._users = render(
            "SELECT "
            + _INDEX_COLUMNS
            + " FROM {schema}.users_view WHERE issuer_id = %(issuer)s "
            + _STATUS_FILTER
            + " AND (%(at)s::bigint IS NULL OR (created_at, id) < (%(at)s, %(id)s))"
            " ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            schema=schema,
        )
        self._token = render(
            "SELECT * FROM {schema}.personal_tokens_view WHERE id = %s", schema=schema
        )
        self._tokens = render(
            "SELECT * FROM {schema}.personal_tokens_view WHERE user_id = %(user)s"
            " AND (%(status)s::text IS NULL OR status = %(status)s)"
            " AND (%(at)s::bigint IS NULL OR (created_at, id) < (%(at)s, %(id)s))"
            " ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
            schema=schema,
        )
        self._token_by_jti = render(
            "SELECT t.*, u.status AS user_status FROM {schema}.personal_tokens_view t"
            " LEFT JOIN {schema}.users_view u ON u.id = t.user_id WHERE t.jti = %s",
            schema=schema,
        )
        self._lock_user = render(
            "SELECT 1 FROM {schema}.users_view WHERE id = %s FOR UPDATE", schema=schema
        )
        self._active_tokens = render(
            "SELECT count(*) FROM {schema}.personal_tokens_view WHERE user_id = %s"
            " AND status = 'active' AND (expires_at IS NULL OR expires_at > %s)",
            schema=schema,
        )
        self._api_key = render("SELECT * FROM {schema}.api_keys_view WHERE id = %s", schema=schema)

    async def user(
        self, conn: psycopg.AsyncConnection[Any], user_id: str, vault: PiiVault
    ) -> UserRow | None:
        """The user with its PII decrypted on read; nothing of it is stored in clear."""
        if vault.schema != self._pii_store:
            raise ValueError("the vault is not the PII key store these queries read")
        row = await _one(conn, self._user, [user_id])
        if row is None:
            return None
        wrapped, sealed = row.pop("wrapped_key"), row.pop("pii")
        pii = vault.open_wrapped(wrapped, row["id"], sealed)
        clear = {} if pii is None else msgspec.structs.asdict(pii)
        return msgspec.convert(
            {"username": None, "profile": {}, "custom_fields": {}, "addresses": [], **row, **clear},
            UserRow,
        )

    async def users(
        self,
        conn: psycopg.AsyncConnection[Any],
        issuer_id: str,
        status: str | None,
        after: SortKey | None,
        limit: int,
    ) -> list[UserIndexRow]:
        """Index records only: a list never decrypts (nor returns) anyone's PII. Sorting and
        filtering by username are impossible by design (the view holds only its HMAC)."""
        params = {"issuer": issuer_id, "status": status, "limit": limit, **_after(after)}
        rows = await _all(conn, self._users, params)
        return [msgspec.convert(r, UserIndexRow) for r in rows]

    async def pending(
        self,
        conn: psycopg.AsyncConnection[Any],
        issuer_id: str,
        after: SortKey | None,
        limit: int,
    ) -> list[UserIndexRow]:
        """The signup approval queue (core-api.md 3.10): index records of the issuer's users
        waiting for approval, oldest signup first."""
        params = {"issuer": issuer_id, "limit": limit, **_after(after)}
        rows = await _all(conn, self._pending, params)
        return [msgspec.convert(r, UserIndexRow) for r in rows]

    async def token(self, conn: psycopg.AsyncConnection[Any], token_id: str) -> TokenRow | None:
        row = await _one(conn, self._token, [token_id])
        return None if row is None else msgspec.convert(row, TokenRow)

    async def tokens(
        self,
        conn: psycopg.AsyncConnection[Any],
        user_id: str,
        status: str | None,
        after: SortKey | None,
        limit: int,
    ) -> list[TokenRow]:
        params = {"user": user_id, "status": status, "limit": limit, **_after(after)}
        rows = await _all(conn, self._tokens, params)
        return [msgspec.convert(r, TokenRow) for r in rows]

    async def token_by_jti(
        self, conn: psycopg.AsyncConnection[Any], jti: str
    ) -> tuple[TokenRow, str | None] | None:
        row = await _one(conn, self._token_by_jti, [jti])
        if row is None:
            return None
        user_status = row.pop("user_status")
        return msgspec.convert(row, TokenRow), user_status

    async def lock_user(self, conn: psycopg.AsyncConnection[Any], user_id: str) -> None:
        await conn.execute(self._lock_user, [user_id])

    async def active_tokens(
        self, conn: psycopg.AsyncConnection[Any], user_id: str, now: int
    ) -> int:
        cur = await conn.execute(self._active_tokens, [user_id, now])
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def api_key(
        self, conn: psycopg.AsyncConnection[Any], key_id: str
    ) -> dict[str, Any] | None:
        return await _one(conn, self._api_key, [key_id])


def _after(after: SortKey | None) -> dict[str, Any]:
    key = time_id_key(after)  # a cursor of another shape is a 400
    return {"at": key and key[0], "id": key and key[1]}


async def _one(
    conn: psycopg.AsyncConnection[Any], query: str, params: Any
) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    return await cur.fetchone()


async def _all(conn: psycopg.AsyncConnection[Any], query: str, params: Any) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    return await cur.fetchall()
