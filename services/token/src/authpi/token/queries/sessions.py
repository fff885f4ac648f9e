"""Read-side SQL of human login: sessions (sessions_view), refresh families and consents. Each
method takes an open connection, so that a handler can read inside its own transaction (the
event store's `prepare` and step planning), or opens one from the pool."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import msgspec
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from authpi.crypto.clock import Clock
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render

MAX_LIVE_SESSIONS = 50

_SESSION_COLUMNS = (
    "id, issuer_id, account_id, user_id, type, client_id, op_session_id, status, status_at,"
    " status_reason, status_by, auth_method, auth_time, device, idle_timeout, cookie_sha256,"
    " last_activity_at, access_token_issued_at, refresh_token_issued_at, refresh_count,"
    " compromised_at, compromised_reason, revoked_reason, revoked_at, created_at, updated_at,"
    " expires_at"
)


_FAMILY_COLUMNS = (
    "id", "issuer_id", "client_id", "user_id", "session_id", "current_jti", "scopes",
    "resources", "org_id", "auth_time", "status", "generation", "current_sha256",
)  # fmt: skip


_SESSION_NAMES = [c.strip() for c in _SESSION_COLUMNS.split(",")]
_CREATED_AT = 1 + _SESSION_NAMES.index("created_at")  # in a row of `_sessions_and_evictable`


class SessionRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    account_id: str
    user_id: str
    type: str
    client_id: str | None
    op_session_id: str | None
    status: str
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    auth_method: str
    auth_time: int
    device: dict[str, Any]
    idle_timeout: int
    cookie_sha256: str | None
    last_activity_at: int
    access_token_issued_at: int | None
    refresh_token_issued_at: int | None
    refresh_count: int
    compromised_at: int | None
    compromised_reason: str | None
    revoked_reason: str | None
    revoked_at: int | None
    created_at: int
    updated_at: int | None
    expires_at: int

    def usable(self, now: int) -> bool:
        """Active, and within both its absolute and its idle lifetime (idp-api.md 11.1)."""
        return self.status == "active" and not self.lapsed(now)

    def lapsed(self, now: int) -> str | None:
        """`max_age` or `idle` once the session is past that limit (absolute wins), else None."""
        if now >= self.expires_at:
            return "max_age"
        if now >= self.last_activity_at + self.idle_timeout * 1000:
            return "idle"
        return None


class FamilyRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    client_id: str
    user_id: str
    session_id: str
    current_jti: str
    scopes: list[str]
    resources: list[str]
    org_id: str | None
    auth_time: int
    status: str
    generation: int = 0  # rotations so far: 0 while the family's first token is current
    current_sha256: str | None = None  # of the current token as issued, when recorded


class FamilyRef(NamedTuple):
    id: str
    session_id: str
    current_jti: str
    issuer_id: str


class SessionSettings(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    max_age: int  # seconds
    idle_timeout: int  # seconds


_session = msgspec.convert
Conn = psycopg.AsyncConnection[Any]


class SessionQueries:
    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self.pool = pool

        def q(text: str) -> Any:
            return render(text, schema=schema)  # type: ignore[arg-type]

        self._session = q(f"SELECT {_SESSION_COLUMNS} FROM {{schema}}.sessions_view WHERE id = %s")
        self._sessions = q(
            f"SELECT {_SESSION_COLUMNS} FROM {{schema}}.sessions_view WHERE id = ANY(%s::text[])"
        )
        # A group commit's sessions in one statement: the ones it names (`sessions`, with no
        # index), then `_evictable` of many users at once (their index, the session's id and
        # creation, the other columns null).
        evicted_cols = ", ".join(
            f"s.{c}" if c in ("id", "created_at") else "NULL" for c in _SESSION_NAMES
        )
        self._sessions_and_evictable = q(
            f"SELECT NULL::bigint, {_SESSION_COLUMNS} FROM {{schema}}.sessions_view"
            " WHERE id = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))"
            f" UNION ALL SELECT r.i, {evicted_cols} FROM ROWS FROM (json_to_recordset(%s::json)"
            " AS (issuer_id text, user_id text)) WITH ORDINALITY AS r(issuer_id, user_id, i)"
            " CROSS JOIN LATERAL (SELECT v.id,"
            " v.created_at FROM {schema}.sessions_view v WHERE v.issuer_id = r.issuer_id"
            " AND v.user_id = r.user_id AND v.type = %s AND v.status IN ('active', 'suspended')"
            " AND v.expires_at > %s ORDER BY v.created_at DESC, v.id DESC OFFSET %s) s"
        )
        self._user_sessions = q(
            f"SELECT {_SESSION_COLUMNS} FROM {{schema}}.sessions_view WHERE issuer_id = %s"
            " AND user_id = %s ORDER BY created_at DESC, id DESC LIMIT 500"
        )
        self._user_sessions_status = q(
            f"SELECT {_SESSION_COLUMNS} FROM {{schema}}.sessions_view WHERE issuer_id = %s"
            " AND user_id = %s AND status = %s ORDER BY created_at DESC, id DESC LIMIT 500"
        )
        self._live_of_type = q(
            "SELECT id FROM {schema}.sessions_view WHERE issuer_id = %s AND user_id = %s"
            " AND type = %s AND status IN ('active', 'suspended') AND expires_at > %s"
            " ORDER BY created_at, id"
        )
        # Only the live sessions beyond the `keep` newest: usually none, so nothing to read.
        self._evictable = q(
            "SELECT id FROM {schema}.sessions_view WHERE issuer_id = %s AND user_id = %s"
            " AND type = %s AND status IN ('active', 'suspended') AND expires_at > %s"
            " ORDER BY created_at DESC, id DESC OFFSET %s"
        )
        self._lapsed = q(
            "SELECT id, CASE WHEN expires_at <= %(now)s THEN 'max_age' ELSE 'idle' END"
            " FROM {schema}.sessions_view WHERE status IN ('active', 'suspended')"
            " AND (expires_at <= %(now)s OR last_activity_at + idle_timeout * 1000::bigint"
            " <= %(now)s) ORDER BY expires_at LIMIT %(limit)s"
        )
        self._rp_of_op = q(
            "SELECT id FROM {schema}.sessions_view WHERE op_session_id = %s"
            " AND status IN ('active', 'suspended')"
        )
        self._active_families_of = q(
            "SELECT id, session_id, current_jti, issuer_id FROM {schema}.refresh_families"
            " WHERE session_id = ANY(%s) AND status = 'active'"
        )
        self._active_families_of_client = q(
            "SELECT id, session_id, current_jti, issuer_id FROM {schema}.refresh_families"
            " WHERE issuer_id = %s AND user_id = %s AND client_id = %s AND status = 'active'"
        )
        self._family = q(
            "SELECT id, issuer_id, client_id, user_id, session_id, current_jti, scopes,"
            " resources, org_id, auth_time, status FROM {schema}.refresh_families WHERE id = %s"
        )
        family_cols = [f"f.{c}" for c in _FAMILY_COLUMNS]
        session_cols = [f"s.{c.strip()}" for c in _SESSION_COLUMNS.split(",")]
        self._family_session = q(
            f"SELECT {', '.join(family_cols + session_cols)} FROM {{schema}}.refresh_families f"
            " LEFT JOIN {schema}.sessions_view s ON s.id = f.session_id WHERE f.id = %s"
        )
        # Index lookups per family (LIMIT 1 keeps each LATERAL a nested loop), never a scan.
        self._families_sessions = q(
            f"SELECT {', '.join(family_cols + session_cols)}"
            " FROM json_array_elements_text(%s::json) AS r(id)"
            " CROSS JOIN LATERAL (SELECT * FROM {schema}.refresh_families WHERE id = r.id"
            " LIMIT 1) f LEFT JOIN LATERAL (SELECT * FROM {schema}.sessions_view"
            " WHERE id = f.session_id LIMIT 1) s ON true"
        )
        self._family_current = q(
            "SELECT current_jti, session_id, status FROM {schema}.refresh_families WHERE id = %s"
        )
        self._consent = q(
            "SELECT scopes FROM {schema}.consents_view WHERE user_id = %s AND client_id = %s"
        )
        self._settings = q(
            "SELECT account_id, session_max_age, session_idle_timeout FROM {schema}.issuers_view"
            " WHERE id = %s"
        )
        self._email_check = q(
            "SELECT i.settings -> 'access', coalesce(c.email_verified, false)"
            " FROM {schema}.issuers_view i LEFT JOIN {schema}.credentials_view c"
            " ON c.user_id = %s WHERE i.id = %s"
        )

    async def lapsed(self, now: int, limit: int) -> list[tuple[str, str]]:
        """(session id, `max_age` | `idle`) of live sessions past a lifetime, oldest first."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._lapsed, {"now": now, "limit": limit})
            return [(r[0], r[1]) for r in await cur.fetchall()]

    async def email_check(
        self, conn: Conn, issuer_id: str, user_id: str
    ) -> tuple[Any, bool] | None:
        """(the issuer's settings.access, whether the user's address is verified), or None for
        an unknown issuer."""
        cur = await conn.execute(self._email_check, [user_id, issuer_id])
        row = await cur.fetchone()
        return (row[0], bool(row[1])) if row else None

    async def session(self, conn: Conn | None, session_id: str) -> SessionRow | None:
        if conn is None:
            async with self.pool.connection() as own:
                return await self.session(own, session_id)
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(self._session, [session_id])
        row = await cur.fetchone()
        return msgspec.convert(row, SessionRow) if row else None

    async def user_sessions(
        self, issuer_id: str, user_id: str, status: str | None = None
    ) -> list[SessionRow]:
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            if status is None:
                await cur.execute(self._user_sessions, [issuer_id, user_id])
            else:
                await cur.execute(self._user_sessions_status, [issuer_id, user_id, status])
            return [msgspec.convert(r, SessionRow) for r in await cur.fetchall()]

    async def live_of_type(
        self, conn: Conn, issuer_id: str, user_id: str, type_: str, now: int
    ) -> list[str]:
        """The user's live sessions of one type, oldest first."""
        cur = await conn.execute(self._live_of_type, [issuer_id, user_id, type_, now])
        return [r[0] for r in await cur.fetchall()]

    async def evictable(
        self, conn: Conn, issuer_id: str, user_id: str, type_: str, now: int, keep: int
    ) -> list[str]:
        """The user's live sessions of one type but the `keep` newest, oldest first."""
        cur = await conn.execute(self._evictable, [issuer_id, user_id, type_, now, keep])
        return [r[0] for r in reversed(await cur.fetchall())]

    async def sessions(self, conn: Conn, session_ids: list[str]) -> dict[str, SessionRow]:
        """`session` of many in one statement, by id; an unknown one is absent."""
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(self._sessions, [list(set(session_ids))])
        return {r["id"]: msgspec.convert(r, SessionRow) for r in await cur.fetchall()}

    async def send_sessions_and_evictable(
        self,
        conn: Conn,
        session_ids: list[str],
        users: list[tuple[str, str]],
        type_: str,
        now: int,
        keep: int,
    ) -> Callable[[], Awaitable[tuple[dict[str, SessionRow], list[list[str]]]]]:
        """`sessions` of `session_ids` and `evictable` of many (issuer id, user id) in one
        statement: the sessions by id, and per user, in their order, the sessions of `type_`
        beyond the `keep` newest, oldest first."""
        # JSON documents rather than arrays: psycopg dumps an array element by element.
        cur = await conn.execute(
            self._sessions_and_evictable,
            [jsonb.dumps(list(set(session_ids))),
             jsonb.dumps([{"issuer_id": i, "user_id": u} for i, u in users]), type_, now, keep],
        )  # fmt: skip

        async def receive() -> tuple[dict[str, SessionRow], list[list[str]]]:
            sessions: dict[str, SessionRow] = {}
            found: list[list[tuple[int, str]]] = [[] for _ in users]
            for row in await cur.fetchall():
                if row[0] is None:
                    session = msgspec.convert(
                        dict(zip(_SESSION_NAMES, row[1:], strict=True)), SessionRow
                    )
                    sessions[session.id] = session
                else:
                    found[int(row[0]) - 1].append((row[_CREATED_AT], str(row[1])))
            return sessions, [[sid for _, sid in sorted(ids)] for ids in found]

        return receive

    async def rp_sessions_of(self, conn: Conn, op_session_id: str) -> list[str]:
        cur = await conn.execute(self._rp_of_op, [op_session_id])
        return [r[0] for r in await cur.fetchall()]

    async def active_families_of(self, conn: Conn, session_ids: list[str]) -> list[FamilyRef]:
        """The sessions' active families."""
        cur = await conn.execute(self._active_families_of, [session_ids])
        return [FamilyRef(*r) for r in await cur.fetchall()]

    async def active_families_of_client(
        self, conn: Conn, issuer_id: str, user_id: str, client_id: str
    ) -> list[FamilyRef]:
        cur = await conn.execute(self._active_families_of_client, [issuer_id, user_id, client_id])
        return [FamilyRef(*r) for r in await cur.fetchall()]

    async def family(self, conn: Conn, family_id: str) -> FamilyRow | None:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(self._family, [family_id])
        row = await cur.fetchone()
        return msgspec.convert(row, FamilyRow) if row else None

    async def family_and_session(
        self, conn: Conn, family_id: str
    ) -> tuple[FamilyRow | None, SessionRow | None]:
        """A family and its session in one statement (the refresh's only read)."""
        cur = await conn.execute(self._family_session, [family_id])
        row = await cur.fetchone()
        if row is None:
            return None, None
        return _family_session(row)

    async def families_and_sessions(
        self, conn: Conn, family_ids: list[str]
    ) -> dict[str, tuple[FamilyRow, SessionRow | None]]:
        """`family_and_session` of many families in one statement (a group commit's read), by
        family id; an unknown family is absent."""
        cur = await conn.execute(self._families_sessions, [jsonb.dumps(family_ids)])
        found = [_family_session(row) for row in await cur.fetchall()]
        return {family.id: (family, session) for family, session in found}

    async def family_current(self, conn: Conn, family_id: str) -> tuple[str, str, str] | None:
        """(current jti, session id, status) of a family."""
        cur = await conn.execute(self._family_current, [family_id])
        row = await cur.fetchone()
        return (row[0], row[1], row[2]) if row else None

    async def consented_scopes(self, conn: Conn | None, user_id: str, client_id: str) -> set[str]:
        if conn is None:
            async with self.pool.connection() as own:
                return await self.consented_scopes(own, user_id, client_id)
        cur = await conn.execute(self._consent, [user_id, client_id])
        row = await cur.fetchone()
        return set(row[0]) if row else set()

    async def settings(self, conn: Conn | None, issuer_id: str) -> SessionSettings | None:
        """The issuer's session lifetimes (issuers_view, learnt from issuer events)."""
        if conn is None:
            async with self.pool.connection() as own:
                return await self.settings(own, issuer_id)
        cur = await conn.execute(self._settings, [issuer_id])
        row = await cur.fetchone()
        if row is None:
            return None
        return SessionSettings(account_id=row[0], max_age=row[1], idle_timeout=row[2])


def _family_session(row: Any) -> tuple[FamilyRow, SessionRow | None]:
    n = len(_FAMILY_COLUMNS)
    family = msgspec.convert(dict(zip(_FAMILY_COLUMNS, row[:n], strict=True)), FamilyRow)
    if row[n] is None:
        return family, None
    session = msgspec.convert(dict(zip(_SESSION_NAMES, row[n:], strict=True)), SessionRow)
    return family, session


class Liveness:
    """Introspection's view of user tokens (idp-api.md 7.1, 14 #25): a token is inactive once its
    session is revoked, suspended or lapsed, or its user is no longer active."""

    def __init__(self, queries: SessionQueries, clock: Clock, people: Any = None) -> None:
        self.queries = queries
        self.clock = clock
        self.people = people  # authpi.token.queries.people.People

    async def refresh_live(self, family_id: str, jti: str) -> bool:
        async with self.queries.pool.connection() as conn:
            family = await self.queries.family(conn, family_id)
        return family is not None and family.status == "active" and family.current_jti == jti

    async def session_live(self, session_id: str) -> bool:
        async with self.queries.pool.connection() as conn:
            row = await self.queries.session(conn, session_id)
            if row is None or not row.usable(self.clock.now_ms()):
                return False
            if self.people is None:
                return True
            user = await self.people.user(conn, row.user_id)
        return user is not None and user.status == "active"
