"""What a projection is: a named consumer with its own tables in its service schema."""

from __future__ import annotations

from typing import Any, Protocol

import psycopg

from authpi.eventstore.store import StoredEvent


class Projection(Protocol):
    name: str  # durable consumer name, `<service>-<purpose>` (STYLE.md 3)
    schema: str  # schema holding its tables and checkpoints
    event_types: tuple[str, ...]  # spec event types it consumes; () means all

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        """Apply one event inside the caller's transaction. Raise to reject it as poison."""
        ...

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Empty its tables (replay)."""
        ...
