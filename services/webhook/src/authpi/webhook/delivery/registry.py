"""The webhooks as the delivery engine sees them: their targets and credentials (read from the
webhook registration's view), and the breaker's three status changes, which are events of the
Webhook aggregate and so go through its handlers."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec
import psycopg

Conn = psycopg.AsyncConnection[Any]


class Target(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    url: str
    status: str  # active | failing | disabled | deleted
    auth_type: str  # none | bearer | signature | bearer+signature
    events: frozenset[str] | None  # None = every type (7.3)
    subjects: list[dict[str, str]] | None
    max_attempts: int = 8
    failure_threshold: int = 20
    probe_interval_seconds: int = 900
    disable_after_seconds: int = 259_200


class Credentials(msgspec.Struct, frozen=True):
    signature_secrets: list[str]  # plaintext whs_…, newest first
    bearer_token: str | None


class Registry(Protocol):
    """Reads run on the caller's connection (the fan-out reads targets in its own transaction);
    the status changes are commands of their own."""

    async def targets(self, conn: Conn) -> list[Target]: ...

    async def target(self, conn: Conn, webhook_id: str) -> Target | None: ...

    async def credentials(self, conn: Conn, webhook_id: str, now_ms: int) -> Credentials: ...

    async def open_circuit(self, account_id: str, webhook_id: str) -> None: ...

    async def close_circuit(self, account_id: str, webhook_id: str) -> None: ...

    async def disable_failing(self, account_id: str, webhook_id: str) -> None: ...
