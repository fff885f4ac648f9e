"""The public-stream relay (issue 12, DESIGN.md 3): tails the audit log in commit order and
publishes each row's public event (platform.md 6.1: never the internal envelope) to
`<ns>.public.<account_id>.<event type>` on the `<NS>_PUBLIC` stream, with `Nats-Msg-Id` = the
evt_ id, so a batch published again after a crash is dropped by JetStream's duplicate window.
The cursor moves only after every message of a batch is acknowledged: at least once, in order.

Every token issued is a public event, so this runs once per token: a batch is published with
plain NATS publishes whose replies (JetStream's acknowledgements) all come to one inbox of the
batch, counted by one subscription, instead of a future and a reply routing per message."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from authpi.contracts.subjects import public_subject
from authpi.webhook.tailer import AuditRow, Tailer

ACK_TIMEOUT_S = 30.0


class NotStored(Exception):
    """A message of the batch was not acknowledged as stored; the batch comes again."""


class Acks:
    """The acknowledgements of one batch: done once each of `expected` has answered."""

    def __init__(self, expected: int) -> None:
        self.missing = expected
        self.failures: list[str] = []
        self.done = asyncio.Event()

    async def answered(self, msg: Msg) -> None:
        # A stored message is acknowledged with its stream sequence; anything else (an API
        # error, a 503 "no responders" status without a body) means it was not stored.
        if b'"seq"' not in msg.data or b'"error"' in msg.data:
            self.failures.append(msg.data.decode(errors="replace")[:200] or str(msg.headers))
        self.missing -= 1
        if self.missing <= 0:
            self.done.set()


class PublicStreamRelay(Tailer):
    name = "public-stream"

    def __init__(self, dsn: str, schema: str, nc: NATS, namespace: str) -> None:
        super().__init__(dsn, schema)
        self.nc = nc
        self.namespace = namespace
        self.published = 0

    async def handle(self, conn: psycopg.AsyncConnection[Any], rows: list[AuditRow]) -> None:
        acks = Acks(len(rows))
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(f"{inbox}.*", cb=acks.answered)
        try:
            for i, row in enumerate(rows):
                await self.nc.publish(
                    public_subject(row.account_id, row.type, self.namespace), row.event,
                    reply=f"{inbox}.{i}", headers={"Nats-Msg-Id": row.id},
                )  # fmt: skip
            try:
                await asyncio.wait_for(acks.done.wait(), ACK_TIMEOUT_S)
            except TimeoutError:
                raise NotStored(f"{acks.missing} of {len(rows)} not acknowledged") from None
        finally:
            await sub.unsubscribe()
        if acks.failures:
            raise NotStored(f"{len(acks.failures)} not stored: {acks.failures[0]}")
        self.published += len(rows)
