"""Whether a token is on the deny-list (the revoked_tokens view), read by introspection."""

from __future__ import annotations

from psycopg import sql
from psycopg_pool import AsyncConnectionPool


class RevokedTokens:
    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self.pool = pool
        self._is_revoked = (
            sql.SQL("SELECT 1 FROM {}.revoked_tokens WHERE jti = %s")
            .format(sql.Identifier(schema))
            .as_string()
        )

    async def is_revoked(self, jti: str) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute(self._is_revoked, [jti])
            return await cur.fetchone() is not None
