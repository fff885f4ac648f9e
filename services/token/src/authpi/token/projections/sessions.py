"""The inline projections of human login, applied in the write transaction (read-your-writes):

* sessions_view: every op and rp session (Core API PublicSession, refresh checks, the browser's
  op session). A rotation updates the rp session's activity and refresh count here, so that a
  refresh never appends to the (long-lived) session stream.
* refresh_families: per family, its current jti, grant (scopes, resources, selected org), session
  and status: what a refresh checks before it rotates.
* consents_view: the scopes each user consented to per client.

Also the sweeper of the ephemeral tables (login flows, authorization codes) past their expiry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, LiteralString

import psycopg
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.sessions import (
    RefreshFamilyRevoked,
    RefreshFamilyStarted,
    RefreshTokenRotated,
    SessionCompromised,
    SessionCreated,
    SessionExpired,
    SessionTerminated,
    SessionUpdated,
    UserConsentGranted,
    UserConsentRevoked,
)
from authpi.crypto.clock import Clock
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent
from authpi.observability import get_logger

log = get_logger("authpi.token.sessions")

SWEEP_EVERY_S = 60.0
SWEEP_MARGIN_MS = 60_000


class SessionsView:
    name = "token-sessions"
    event_types = (
        "session.created",
        "session.updated",
        "session.terminated",
        "session.expired",
        "session.compromised",
        "refresh-family.started",
        "refresh-token.rotated",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema  # `authpi replay` locks and rebuilds by it

        def q(text: str) -> Any:
            return render(text, schema=schema)  # type: ignore[arg-type]

        # With the op session's activity (a sign-in through SSO is op activity too) in the same
        # statement: the UPDATE touches no row when there is no op session.
        self._insert = q(
            "WITH op AS (UPDATE {schema}.sessions_view SET last_activity_at ="
            " GREATEST(last_activity_at, %s) WHERE id = %s)"
            " INSERT INTO {schema}.sessions_view (id, issuer_id, account_id, user_id, type,"
            " client_id, op_session_id, status, status_at, auth_method, auth_time, device,"
            " idle_timeout, cookie_sha256, last_activity_at, created_at, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING"
        )
        self._status = q(
            "UPDATE {schema}.sessions_view SET status = %s, status_at = %s, status_reason = %s,"
            " status_by = %s, updated_at = %s WHERE id = %s"
        )
        self._terminated = q(
            "UPDATE {schema}.sessions_view SET status = 'revoked', status_at = %s,"
            " status_reason = %s, status_by = %s, revoked_reason = %s, revoked_at = %s,"
            " updated_at = %s WHERE id = %s"
        )
        self._compromised = q(
            "UPDATE {schema}.sessions_view SET compromised_at = %s, compromised_reason = %s,"
            " updated_at = %s WHERE id = %s"
        )
        self._issued = q(
            "UPDATE {schema}.sessions_view SET access_token_issued_at = %s,"
            " refresh_token_issued_at = %s, last_activity_at = %s WHERE id = %s"
        )
        self._refreshed = q(
            "UPDATE {schema}.sessions_view SET access_token_issued_at = %s,"
            " refresh_token_issued_at = %s, last_activity_at = %s,"
            " refresh_count = refresh_count + 1 WHERE id = %s"
        )
        # A group commit's rotations at once: per session, the latest time and how many.
        self._refreshed_many = q(
            "UPDATE {schema}.sessions_view s SET access_token_issued_at = u.at,"
            " refresh_token_issued_at = u.at, last_activity_at = u.at,"
            " refresh_count = s.refresh_count + u.n FROM json_to_recordset(%s::json)"
            " AS u(id text, at bigint, n int) WHERE s.id = u.id"
            " AND s.id = ANY(ARRAY(SELECT json_array_elements(%s::json) ->> 'id'))"
        )
        # Many sessions of a group commit of code exchanges at once (`_insert` of each), with
        # their op sessions' latest activity.
        self._insert_many = q(
            "WITH r AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS r(id text,"
            " issuer_id text, account_id text, user_id text, type text, client_id text,"
            " op_session_id text, status text, auth_method text, auth_time bigint,"
            " device jsonb, idle_timeout integer, cookie_sha256 text, created_at bigint,"
            " expires_at bigint, issued_at bigint)),"
            " op AS (UPDATE {schema}.sessions_view v SET last_activity_at ="
            " GREATEST(v.last_activity_at, o.at) FROM (SELECT op_session_id, max(created_at)"
            " AS at FROM r WHERE op_session_id IS NOT NULL GROUP BY op_session_id) o"
            " WHERE v.id = o.op_session_id"
            " AND v.id = ANY(ARRAY(SELECT op_session_id FROM r WHERE op_session_id IS NOT NULL)))"
            " INSERT INTO {schema}.sessions_view (id, issuer_id, account_id, user_id, type,"
            " client_id, op_session_id, status, status_at, auth_method, auth_time, device,"
            " idle_timeout, cookie_sha256, last_activity_at, created_at, expires_at,"
            " access_token_issued_at, refresh_token_issued_at)"
            " SELECT id, issuer_id, account_id, user_id, type, client_id, op_session_id, status,"
            " created_at, auth_method, auth_time, device, idle_timeout, cookie_sha256,"
            " coalesce(issued_at, created_at), created_at, expires_at, issued_at, issued_at"
            " FROM r ON CONFLICT (id) DO NOTHING"
        )
        # Many families started at once, on distinct sessions (`_issued` of each).
        self._issued_many = q(
            "UPDATE {schema}.sessions_view s SET access_token_issued_at = u.at,"
            " refresh_token_issued_at = u.at, last_activity_at = u.at"
            " FROM json_to_recordset(%s::json) AS u(id text, at bigint) WHERE s.id = u.id"
            " AND s.id = ANY(ARRAY(SELECT json_array_elements(%s::json) ->> 'id'))"
        )
        self._reset = q("TRUNCATE {schema}.sessions_view")

    async def apply_many(
        self, conn: psycopg.AsyncConnection[Any], stored: Sequence[StoredEvent]
    ) -> Sequence[StoredEvent]:
        """Many events of one type of a group commit in one statement (rotations, sessions
        opened, families started), or sessions opened with their families' start (a batch of
        code exchanges, projected by view): one INSERT whose rows already carry what each
        family's start sets. Anything else is left to `apply`."""
        kinds = {type(e.event) for e in stored}
        if kinds == {SessionCreated, RefreshFamilyStarted}:
            return await self._created_with_families(conn, stored)
        if kinds == {SessionCreated}:
            created = [e.event for e in stored if isinstance(e.event, SessionCreated)]
            ops = list({c.op_session_id for c in created if c.op_session_id is not None})
            if not {c.session_id for c in created}.isdisjoint(ops):
                # An op session and its rp sessions together (a replay): one statement's UPDATE
                # cannot see the op row its own INSERT adds, so they apply in order.
                return stored
            await conn.execute(self._insert_many, [jsonb.dumps([_created(e) for e in stored])])
            return ()
        if kinds == {RefreshFamilyStarted}:
            started = [e.event for e in stored if isinstance(e.event, RefreshFamilyStarted)]
            if len({e.session_id for e in started}) != len(started):
                return stored  # one session's families apply in order
            doc = jsonb.dumps([{"id": e.session_id, "at": e.started_at} for e in started])
            await conn.execute(self._issued_many, [doc, doc])
            return ()
        rotations = [e.event for e in stored if isinstance(e.event, RefreshTokenRotated)]
        if len(rotations) != len(stored):
            return stored
        latest: dict[str, list[int]] = {}
        for e in rotations:
            at_n = latest.setdefault(e.session_id, [e.rotated_at, 0])
            at_n[0] = max(at_n[0], e.rotated_at)
            at_n[1] += 1
        doc = jsonb.dumps([{"id": k, "at": v[0], "n": v[1]} for k, v in latest.items()])
        await conn.execute(self._refreshed_many, [doc, doc])
        return ()

    async def _created_with_families(
        self, conn: psycopg.AsyncConnection[Any], stored: Sequence[StoredEvent]
    ) -> Sequence[StoredEvent]:
        """Sessions opened and families started on them, each start after its session (as
        `_issued` would set them after the INSERT); else all of it is left to `apply`."""
        rows: dict[str, dict[str, Any]] = {}
        for e in stored:
            if isinstance(e.event, SessionCreated):
                if e.event.session_id in rows:
                    return stored
                rows[e.event.session_id] = _created(e)
                continue
            assert isinstance(e.event, RefreshFamilyStarted)
            row = rows.get(e.event.session_id)
            if row is None or "issued_at" in row:
                return stored  # a start without its session here, or a second one
            row["issued_at"] = e.event.started_at
        ops = {r["op_session_id"] for r in rows.values() if r["op_session_id"] is not None}
        if not ops.isdisjoint(rows):
            return stored  # an op session and its rp sessions together: in order
        await conn.execute(self._insert_many, [jsonb.dumps(list(rows.values()))])
        return ()

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case SessionCreated() as e:
                await conn.execute(
                    self._insert,
                    [
                        e.created_at,
                        e.op_session_id,
                        e.session_id,
                        e.issuer_id,
                        e.account_id,
                        e.user_id,
                        e.session_type,
                        e.client_id,
                        e.op_session_id,
                        e.status,
                        e.created_at,
                        e.authentication.method,
                        e.authentication.authenticated_at,
                        jsonb.dumps(e.device),
                        e.idle_timeout,
                        e.cookie_sha256,
                        e.created_at,
                        e.created_at,
                        e.expires_at,
                    ],
                )
            case SessionUpdated() as e:
                await conn.execute(
                    self._status,
                    [
                        e.status,
                        e.updated_at,
                        e.status_reason,
                        e.status_by,
                        e.updated_at,
                        e.session_id,
                    ],
                )
            case SessionExpired() as e:
                await conn.execute(
                    self._status,
                    ["expired", e.expired_at, e.reason, "system", e.expired_at, e.session_id],
                )
            case SessionTerminated() as e:
                await conn.execute(
                    self._terminated,
                    [
                        e.revoked_at,
                        e.revoked_reason,
                        e.status_by,
                        e.revoked_reason,
                        e.revoked_at,
                        e.revoked_at,
                        e.session_id,
                    ],
                )
            case SessionCompromised() as e:
                await conn.execute(
                    self._compromised,
                    [e.compromised_at, e.compromised_reason, e.compromised_at, e.session_id],
                )
            case RefreshFamilyStarted() as e:
                await conn.execute(
                    self._issued, [e.started_at, e.started_at, e.started_at, e.session_id]
                )
            case RefreshTokenRotated() as e:
                await conn.execute(
                    self._refreshed, [e.rotated_at, e.rotated_at, e.rotated_at, e.session_id]
                )
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


class RefreshFamiliesView:
    name = "token-refresh-families"
    event_types = ("refresh-family.started", "refresh-token.rotated", "refresh-family.revoked")

    def __init__(self, schema: str) -> None:
        self.schema = schema  # `authpi replay` locks and rebuilds by it

        def q(text: str) -> Any:
            return render(text, schema=schema)  # type: ignore[arg-type]

        self._insert = q(
            "INSERT INTO {schema}.refresh_families (id, issuer_id, client_id, user_id,"
            " session_id, current_jti, scopes, resources, org_id, auth_time, status, created_at,"
            " current_sha256)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, 'active', %s, %s)"
            " ON CONFLICT (id) DO NOTHING"
        )
        self._rotated = q(
            "UPDATE {schema}.refresh_families SET current_jti = %s, current_sha256 = %s,"
            " rotated_at = %s, generation = generation + 1 WHERE id = %s"
        )
        self._rotated_many = q(
            "UPDATE {schema}.refresh_families f SET current_jti = u.jti,"
            " current_sha256 = u.sha256, rotated_at = u.at, generation = f.generation + 1"
            " FROM json_to_recordset(%s::json) AS u(id text, jti text, sha256 text, at bigint)"
            " WHERE f.id = u.id"
            # The ids again as an array the index is probed with, whatever the planner guesses
            # of the document's size.
            " AND f.id = ANY(ARRAY(SELECT json_array_elements(%s::json) ->> 'id'))"
        )
        self._revoked = q(
            "UPDATE {schema}.refresh_families SET status = 'revoked', revoked_reason = %s,"
            " revoked_at = %s WHERE id = %s"
        )
        self._insert_many = q(
            "INSERT INTO {schema}.refresh_families (id, issuer_id, client_id, user_id,"
            " session_id, current_jti, scopes, resources, org_id, auth_time, status, created_at,"
            " current_sha256)"
            " SELECT id, issuer_id, client_id, user_id, session_id, current_jti, scopes,"
            " resources, org_id, auth_time, 'active', created_at, current_sha256"
            " FROM jsonb_to_recordset(%s::jsonb) AS r(id text, issuer_id text, client_id text,"
            " user_id text, session_id text, current_jti text, scopes jsonb, resources jsonb,"
            " org_id text, auth_time bigint, created_at bigint, current_sha256 text)"
            " ON CONFLICT (id) DO NOTHING"
        )
        self._reset = q("TRUNCATE {schema}.refresh_families")

    async def apply_many(
        self, conn: psycopg.AsyncConnection[Any], stored: Sequence[StoredEvent]
    ) -> Sequence[StoredEvent]:
        """Families started, or rotations of distinct families, in one statement; anything
        else is left to `apply` (two rotations of one family must apply in order)."""
        started = [e.event for e in stored if isinstance(e.event, RefreshFamilyStarted)]
        if started and len(started) == len(stored):
            await conn.execute(self._insert_many, [jsonb.dumps([_family(e) for e in started])])
            return ()
        rotations = [e.event for e in stored if isinstance(e.event, RefreshTokenRotated)]
        if len(rotations) != len(stored) or len({e.family_id for e in rotations}) != len(stored):
            return stored
        doc = jsonb.dumps(
            [{"id": e.family_id, "jti": e.next_jti, "sha256": e.next_token_sha256,
              "at": e.rotated_at} for e in rotations]
        )  # fmt: skip
        await conn.execute(self._rotated_many, [doc, doc])
        return ()

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case RefreshFamilyStarted() as e:
                await conn.execute(
                    self._insert,
                    [
                        e.family_id,
                        e.issuer_id,
                        e.client_id,
                        e.user_id,
                        e.session_id,
                        e.jti,
                        jsonb.dumps(e.scopes),
                        jsonb.dumps(e.resources),
                        e.org_id,
                        e.auth_time,
                        e.started_at,
                        e.token_sha256,
                    ],
                )
            case RefreshTokenRotated() as e:
                await conn.execute(
                    self._rotated, [e.next_jti, e.next_token_sha256, e.rotated_at, e.family_id]
                )
            case RefreshFamilyRevoked() as e:
                await conn.execute(self._revoked, [e.reason, e.revoked_at, e.family_id])
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


def _created(stored: StoredEvent) -> dict[str, Any]:
    """A session.created as a row of `SessionsView._insert_many`."""
    e = stored.event
    assert isinstance(e, SessionCreated)
    return {
        "id": e.session_id, "issuer_id": e.issuer_id, "account_id": e.account_id,
        "user_id": e.user_id, "type": e.session_type, "client_id": e.client_id,
        "op_session_id": e.op_session_id, "status": e.status,
        "auth_method": e.authentication.method,
        "auth_time": e.authentication.authenticated_at, "device": e.device,
        "idle_timeout": e.idle_timeout, "cookie_sha256": e.cookie_sha256,
        "created_at": e.created_at, "expires_at": e.expires_at,
    }  # fmt: skip


def _family(e: RefreshFamilyStarted) -> dict[str, Any]:
    """A refresh-family.started as a row of `RefreshFamiliesView._insert_many`."""
    return {
        "id": e.family_id, "issuer_id": e.issuer_id, "client_id": e.client_id,
        "user_id": e.user_id, "session_id": e.session_id, "current_jti": e.jti,
        "scopes": e.scopes, "resources": e.resources, "org_id": e.org_id,
        "auth_time": e.auth_time, "created_at": e.started_at, "current_sha256": e.token_sha256,
    }  # fmt: skip


class ConsentsView:
    name = "token-consents"
    event_types = ("user.consent.granted", "user.consent.revoked")

    def __init__(self, schema: str) -> None:
        self.schema = schema  # `authpi replay` locks and rebuilds by it

        def q(text: str) -> Any:
            return render(text, schema=schema)  # type: ignore[arg-type]

        self._upsert = q(
            "INSERT INTO {schema}.consents_view (issuer_id, user_id, client_id, scopes,"
            " granted_at) VALUES (%s, %s, %s, %s::jsonb, %s) ON CONFLICT (user_id, client_id)"
            " DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at"
        )
        self._delete = q("DELETE FROM {schema}.consents_view WHERE user_id = %s AND client_id = %s")
        self._reset = q("TRUNCATE {schema}.consents_view")

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case UserConsentGranted() as e:
                await conn.execute(
                    self._upsert,
                    [e.issuer_id, e.user_id, e.client_id, jsonb.dumps(e.scopes), e.granted_at],
                )
            case UserConsentRevoked() as e:
                await conn.execute(self._delete, [e.user_id, e.client_id])
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


class EphemeralSweeper:
    """Deletes login flows, authorization codes, TOTP enrolments, second-factor challenges and
    SSO sign-ins past their expiry (by a margin)."""

    def __init__(self, pool: AsyncConnectionPool, schema: str, clock: Clock) -> None:
        self.pool = pool
        self.clock = clock
        self._sweeps: list[LiteralString] = [
            render("DELETE FROM {schema}.login_flows WHERE expires_at < %s", schema=schema),
            render("DELETE FROM {schema}.authorization_codes WHERE expires_at < %s", schema=schema),
            render("DELETE FROM {schema}.mfa_enrollments WHERE expires_at < %s", schema=schema),
            render("DELETE FROM {schema}.mfa_challenges WHERE expires_at < %s", schema=schema),
            render("DELETE FROM {schema}.sso_logins WHERE expires_at < %s", schema=schema),
        ]

    async def sweep(self) -> int:
        cutoff = self.clock.now_ms() - SWEEP_MARGIN_MS
        removed = 0
        async with self.pool.connection() as conn:
            for statement in self._sweeps:
                cur = await conn.execute(statement, [cutoff])
                removed += cur.rowcount
        return removed

    async def run_sweeper(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            removed = await self.sweep()
            if removed:
                log.info("login_artefacts.swept", removed=removed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=SWEEP_EVERY_S)
