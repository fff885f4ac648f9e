"""The webhooks as the delivery engine sees them: their targets and credentials (read from the
registration's view, `queries.webhooks`), and the breaker's three status changes, which are
events of the Webhook aggregate and so go through its handlers. `Registry` is that interface;
`ViewRegistry` is the deployment's implementation of it."""

from __future__ import annotations

from typing import Any, Protocol

import psycopg

from authpi.crypto.envelope import Kek
from authpi.webhook.handlers.webhooks import Webhooks
from authpi.webhook.queries import webhooks as view
from authpi.webhook.queries.webhooks import Credentials, Target

Conn = psycopg.AsyncConnection[Any]

__all__ = ["Conn", "Credentials", "Registry", "Target", "ViewRegistry"]


class Registry(Protocol):
    """Reads run on the caller's connection (the fan-out reads targets in its own transaction);
    the status changes are commands of their own."""

    async def targets(self, conn: Conn) -> list[Target]: ...

    async def target(self, conn: Conn, webhook_id: str) -> Target | None: ...

    async def credentials(self, conn: Conn, webhook_id: str, now_ms: int) -> Credentials: ...

    async def open_circuit(self, account_id: str, webhook_id: str) -> None: ...

    async def close_circuit(self, account_id: str, webhook_id: str) -> None: ...

    async def disable_failing(self, account_id: str, webhook_id: str) -> None: ...


class ViewRegistry:
    def __init__(self, schema: str, kek: Kek, handlers: Webhooks) -> None:
        self.schema = schema
        self.kek = kek
        self.handlers = handlers

    async def targets(self, conn: Conn) -> list[Target]:
        return await view.targets(conn, self.schema)

    async def target(self, conn: Conn, webhook_id: str) -> Target | None:
        return await view.target(conn, self.schema, webhook_id)

    async def credentials(self, conn: Conn, webhook_id: str, now_ms: int) -> Credentials:
        return await view.credentials(conn, self.schema, self.kek, webhook_id, now_ms)

    async def open_circuit(self, account_id: str, webhook_id: str) -> None:
        await self.handlers.open_circuit(account_id, webhook_id)

    async def close_circuit(self, account_id: str, webhook_id: str) -> None:
        await self.handlers.close_circuit(account_id, webhook_id)

    async def disable_failing(self, account_id: str, webhook_id: str) -> None:
        await self.handlers.disable_failing(account_id, webhook_id)
