"""Read-side SQL over integrator_credentials_view: the CLI's and the Core API's listings, the
lookup by id or NATS user, and the active users the NATS authorization is rendered from."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.eventstore.sqltext import render
from authpi.messaging.auth import IntegratorCredential


class CredentialRow(msgspec.Struct, kw_only=True):
    """A credential as listed: never its digest."""

    id: str
    account_id: str
    nats_user: str
    name: str
    status: str  # active | revoked
    issued_at: int
    revoked_at: int | None


class IntegratorQueries:
    def __init__(self, schema: str) -> None:
        self._list = render(
            "SELECT id, account_id, nats_user, name, status, issued_at, revoked_at"
            " FROM {schema}.integrator_credentials_view"
            " WHERE (%(account)s::text IS NULL OR account_id = %(account)s)"
            "   AND (%(revoked)s OR status = 'active') ORDER BY issued_at, id",
            schema=schema,
        )
        self._find = render(
            "SELECT id, account_id, nats_user, name, status, issued_at, revoked_at"
            " FROM {schema}.integrator_credentials_view"
            " WHERE id = %(key)s OR nats_user = %(key)s",
            schema=schema,
        )
        self._active = render(
            "SELECT nats_user, account_id, password_bcrypt, name, issued_at"
            " FROM {schema}.integrator_credentials_view WHERE status = 'active'"
            " ORDER BY nats_user",
            schema=schema,
        )
        self._users = render(
            "SELECT nats_user FROM {schema}.integrator_credentials_view", schema=schema
        )

    async def listed(
        self, conn: psycopg.AsyncConnection[Any], account_id: str | None, *, revoked: bool = False
    ) -> list[CredentialRow]:
        cur = conn.cursor(row_factory=class_row(CredentialRow))
        await cur.execute(self._list, {"account": account_id, "revoked": revoked})
        return await cur.fetchall()

    async def find(self, conn: psycopg.AsyncConnection[Any], key: str) -> CredentialRow | None:
        """By credential id (intc_…) or NATS user (int_…)."""
        cur = conn.cursor(row_factory=class_row(CredentialRow))
        await cur.execute(self._find, {"key": key})
        return await cur.fetchone()

    async def users(self, conn: psycopg.AsyncConnection[Any]) -> set[str]:
        """Every NATS user ever issued, revoked ones included."""
        cur = await conn.execute(self._users)
        return {r[0] for r in await cur.fetchall()}

    async def active(self, conn: psycopg.AsyncConnection[Any]) -> dict[str, IntegratorCredential]:
        """What the NATS server must accept, by user."""
        cur = await conn.execute(self._active)
        return {
            r[0]: IntegratorCredential(
                user=r[0], account_id=r[1], password_bcrypt=r[2], name=r[3], created_at=r[4]
            )
            for r in await cur.fetchall()
        }
