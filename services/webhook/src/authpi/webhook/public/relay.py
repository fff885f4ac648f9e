"""The public-stream relay (issue 12, DESIGN.md 3): tails the audit log in commit order and
publishes each row's public event (platform.md 6.1: never the internal envelope) to
`<ns>.public.<account_id>.<event type>` on the `<NS>_PUBLIC` stream, with `Nats-Msg-Id` = the
evt_ id, so a batch published again after a crash is dropped by JetStream's duplicate window.
The cursor moves only after every message of a batch is acknowledged: at least once, in order."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from nats.js import JetStreamContext
from nats.js.api import PubAck

from authpi.contracts.subjects import public_subject
from authpi.webhook.tailer import AuditRow, Tailer


class PublicStreamRelay(Tailer):
    name = "public-stream"

    def __init__(self, dsn: str, schema: str, js: JetStreamContext, namespace: str) -> None:
        super().__init__(dsn, schema)
        self.js = js
        self.namespace = namespace
        self.published = 0

    async def handle(self, conn: psycopg.AsyncConnection[Any], rows: list[AuditRow]) -> None:
        futures: list[asyncio.Future[PubAck]] = []
        for row in rows:
            futures.append(
                await self.js.publish_async(  # pyright: ignore[reportUnknownMemberType]
                    public_subject(row.account_id, row.type, self.namespace),
                    row.event,
                    headers={"Nats-Msg-Id": row.id},
                )
            )
        await asyncio.gather(*futures)  # every ack, or raise: the cursor stays
        self.published += len(rows)
