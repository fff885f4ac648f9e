"""Read-side SQL of the hosted portal over the token service's own tables: the issuer as the
portal shows it (issuers_view: name, status, settings) and a user's credential
(credentials_view)."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.eventstore.sqltext import render


class IssuerRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    status: str
    name: str
    settings: dict[str, Any]


class CredentialRow(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    issuer_id: str
    verifier_id: str | None
    password_hash: str | None
    email_verified: bool


class PortalQueries:
    def __init__(self, schema: str) -> None:
        self._issuer = render(
            "SELECT id, account_id, status, name, settings FROM {schema}.issuers_view"
            " WHERE id = %s",
            schema=schema,
        )
        self._credential = render(
            "SELECT user_id, issuer_id, verifier_id, password_hash, email_verified"
            " FROM {schema}.credentials_view WHERE user_id = %s",
            schema=schema,
        )

    async def issuer(self, conn: psycopg.AsyncConnection[Any], issuer_id: str) -> IssuerRow | None:
        cur = conn.cursor(row_factory=class_row(IssuerRow))
        await cur.execute(self._issuer, [issuer_id])
        return await cur.fetchone()

    async def credential(
        self, conn: psycopg.AsyncConnection[Any], user_id: str
    ) -> CredentialRow | None:
        cur = conn.cursor(row_factory=class_row(CredentialRow))
        await cur.execute(self._credential, [user_id])
        return await cur.fetchone()
