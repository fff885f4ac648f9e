"""Read side of organization SSO: the organization an address's domain routes to (discovery, and
the portal's sign-in), and an organization's upstream connection with its verified domains (the
federated sign-in), from the token service's own organizations_view and sso_domains_view
(reactions.people)."""

from __future__ import annotations

from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from authpi.eventstore.sqltext import render


class SsoRouteRow(msgspec.Struct, frozen=True, kw_only=True):
    org_id: str
    connection_type: str | None
    sso_only: bool = False


class SsoConnection(msgspec.Struct, frozen=True, kw_only=True):
    """An organization as its SSO sign-in needs it: live status, the `sso` object, the SSO
    client secret as stored (wrapped by the KEK), and its verified SSO domains."""

    org_id: str
    issuer_id: str
    status: str
    sso: dict[str, Any]
    client_secret_sealed: str | None
    domains: frozenset[str]

    @property
    def enabled(self) -> bool:
        return self.status == "active" and self.sso.get("enabled") is True


class SsoQueries:
    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self.pool = pool
        self._route = render(
            "SELECT o.id, o.sso_connection_type, o.sso_only FROM {schema}.sso_domains_view d"
            " JOIN {schema}.organizations_view o ON o.id = d.org_id"
            " WHERE d.issuer_id = %s AND d.domain = %s AND o.issuer_id = d.issuer_id"
            " AND o.status = 'active' AND o.sso_enabled"
            " ORDER BY d.verified_at, o.id LIMIT 1",
            schema=schema,
        )
        self._any = render(
            "SELECT 1 FROM {schema}.sso_domains_view d"
            " JOIN {schema}.organizations_view o ON o.id = d.org_id"
            " WHERE d.issuer_id = %s AND o.issuer_id = d.issuer_id AND o.status = 'active'"
            " AND o.sso_enabled LIMIT 1",
            schema=schema,
        )
        self._connection = render(
            "SELECT o.id, o.issuer_id, o.status, o.sso, o.sso_client_secret,"
            " coalesce((SELECT array_agg(d.domain) FROM {schema}.sso_domains_view d"
            " WHERE d.org_id = o.id AND d.issuer_id = o.issuer_id), '{{}}')"
            " FROM {schema}.organizations_view o WHERE o.id = %s AND o.issuer_id = %s",
            schema=schema,
        )

    async def any_route(self, issuer_id: str) -> bool:
        """Whether any address of the issuer routes to SSO (the login page says how to use it)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._any, [issuer_id])
            return await cur.fetchone() is not None

    async def route(self, issuer_id: str, domain: str) -> SsoRouteRow | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._route, [issuer_id, domain])
            row = await cur.fetchone()
        if row is None:
            return None
        return SsoRouteRow(org_id=row[0], connection_type=row[1], sso_only=bool(row[2]))

    async def connection(self, issuer_id: str, org_id: str) -> SsoConnection | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._connection, [org_id, issuer_id])
            row = await cur.fetchone()
        if row is None:
            return None
        return SsoConnection(
            org_id=row[0], issuer_id=row[1], status=row[2], sso=row[3] or {},
            client_secret_sealed=row[4], domains=frozenset(row[5]),
        )  # fmt: skip
