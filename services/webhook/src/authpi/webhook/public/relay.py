"""The public-stream relay (issue 12, DESIGN.md 3): tails the audit log in commit order and
publishes each row's public event (platform.md 6.1: never the internal envelope) to
`<ns>.public.<account_id>.<event type>` on the `<NS>_PUBLIC` stream, with `Nats-Msg-Id` = the
evt_ id, so a batch published again after a crash is dropped by JetStream's duplicate window.
The cursor moves only after every message of a batch is acknowledged: at least once, in order.

Every token issued is a public event, so this runs once per token. A batch goes out as one write
(authpi.messaging.wire) in which only the first and the last message ask for JetStream's
acknowledgement. This relay is the stream's only publisher (one copy per deployment) and JetStream
stores one connection's messages in order, so when both are stored anew and their sequences are
exactly the batch's length apart, every message between them was stored too. Anything else (a
duplicate after a crash, an error, a gap) sends the whole batch again with an acknowledgement
per message, where each is checked and the ones already stored are dropped as duplicates."""

from __future__ import annotations

from typing import Any

import psycopg
from nats.aio.client import Client as NATS

from authpi.contracts.subjects import public_subject
from authpi.messaging.wire import Outgoing, publish_acknowledged
from authpi.observability import get_logger
from authpi.webhook.tailer import AuditRow, Tailer

log = get_logger("authpi.webhook.public")


class PublicStreamRelay(Tailer):
    name = "public-stream"

    def __init__(self, dsn: str, schema: str, nc: NATS, namespace: str) -> None:
        super().__init__(dsn, schema)
        self.nc = nc
        self.namespace = namespace
        self.published = 0

    async def handle(self, conn: psycopg.AsyncConnection[Any], rows: list[AuditRow]) -> None:
        if len(rows) < 3 or not await self._publish(rows, acknowledged=(0, len(rows) - 1)):
            await self._publish(rows, acknowledged=range(len(rows)))
        self.published += len(rows)

    async def _publish(self, rows: list[AuditRow], acknowledged: range | tuple[int, int]) -> bool:
        """Publish the batch with an acknowledgement asked for the rows at `acknowledged`.
        Raise NotStored when one of them is not stored or does not answer in time. True when
        the acknowledgements prove the whole batch stored: every row acknowledged (stored now,
        or before: a duplicate), or the first and the last stored anew exactly the batch's
        length apart."""
        asked = set(acknowledged)
        subjects: dict[tuple[str, str], str] = {}  # a batch's rows share a few accounts and types
        for row in rows:
            key = (row.account_id, row.type)
            if key not in subjects:
                subjects[key] = public_subject(row.account_id, row.type, self.namespace)
        stored = await publish_acknowledged(
            self.nc,
            [Outgoing(subjects[row.account_id, row.type], row.id, row.event) for row in rows],
            asked,
        )
        if len(asked) == len(rows):
            return True
        first, last = stored[0], stored[len(rows) - 1]
        whole = (
            not first.duplicate and not last.duplicate and first.stream == last.stream
            and last.seq - first.seq == len(rows) - 1
        )  # fmt: skip
        if not whole:
            log.info(
                "public_stream.batch_rechecked", rows=len(rows), first_seq=first.seq,
                last_seq=last.seq, duplicate=first.duplicate or last.duplicate,
            )  # fmt: skip
        return whole
