"""Whether a token is on the deny-list (the revoked_tokens view), read by introspection."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from authpi.eventstore.reads import reading
from authpi.eventstore.sqltext import render


class RevokedTokens:
    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self.pool = pool
        self._is_revoked = render(
            "SELECT 1 FROM {schema}.revoked_tokens WHERE jti = %s", schema=schema
        )

    async def is_revoked(self, jti: str) -> bool:
        async with reading(self.pool) as conn:  # one round trip: no BEGIN, no COMMIT
            cur = await conn.execute(self._is_revoked, [jti])
            return await cur.fetchone() is not None
