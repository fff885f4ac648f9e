"""Read side of SSO discovery: the organization an address's domain routes to, from the token's
own organizations_view and sso_domains_view (reactions.people)."""

from __future__ import annotations

import msgspec
from psycopg_pool import AsyncConnectionPool

from authpi.eventstore.sqltext import render


class SsoRouteRow(msgspec.Struct, frozen=True, kw_only=True):
    org_id: str
    connection_type: str | None


class SsoQueries:
    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self.pool = pool
        self._route = render(
            "SELECT o.id, o.sso_connection_type FROM {schema}.sso_domains_view d"
            " JOIN {schema}.organizations_view o ON o.id = d.org_id"
            " WHERE d.issuer_id = %s AND d.domain = %s AND o.issuer_id = d.issuer_id"
            " AND o.status = 'active' AND o.sso_enabled"
            " ORDER BY d.verified_at, o.id LIMIT 1",
            schema=schema,
        )

    async def route(self, issuer_id: str, domain: str) -> SsoRouteRow | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._route, [issuer_id, domain])
            row = await cur.fetchone()
        return SsoRouteRow(org_id=row[0], connection_type=row[1]) if row else None
