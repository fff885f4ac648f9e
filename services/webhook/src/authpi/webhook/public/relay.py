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

import asyncio
from typing import Any

import msgspec
import psycopg
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from authpi.contracts.subjects import public_subject
from authpi.messaging.wire import Outgoing, publish_all
from authpi.observability import get_logger
from authpi.webhook.tailer import AuditRow, Tailer

log = get_logger("authpi.webhook.public")

ACK_TIMEOUT_S = 30.0


class NotStored(Exception):
    """A message of the batch was not acknowledged as stored; the batch comes again."""


class PubAck(msgspec.Struct):
    """JetStream's answer to a publish: a stream sequence when stored, else an error."""

    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: dict[str, Any] | None = None


_decode_ack = msgspec.json.Decoder(PubAck).decode


class Acks:
    """The acknowledgements of one batch, by the index their reply subject ends in: done once
    each of `expected` has answered."""

    def __init__(self, expected: int) -> None:
        self.missing = expected
        self.failures: list[str] = []
        self.stored: dict[int, PubAck] = {}
        self.done = asyncio.Event()

    async def answered(self, msg: Msg) -> None:
        # A stored message is acknowledged with its stream sequence; anything else (an API
        # error, a 503 "no responders" status without a body) means it was not stored.
        try:
            ack: PubAck | None = _decode_ack(msg.data)
        except msgspec.DecodeError:
            ack = None
        if ack is None or ack.error is not None or not ack.seq:
            self.failures.append(msg.data.decode(errors="replace")[:200] or str(msg.headers))
        else:
            self.stored[int(msg.subject.rpartition(".")[2])] = ack
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
        acks = Acks(len(asked))
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(f"{inbox}.*", cb=acks.answered)
        try:
            await publish_all(
                self.nc,
                (
                    Outgoing(
                        subjects[row.account_id, row.type], row.id, row.event,
                        f"{inbox}.{i}" if i in asked else "",
                    )
                    for i, row in enumerate(rows)
                ),
            )  # fmt: skip
            try:
                await asyncio.wait_for(acks.done.wait(), ACK_TIMEOUT_S)
            except TimeoutError:
                raise NotStored(f"{acks.missing} of {len(asked)} not acknowledged") from None
        finally:
            await sub.unsubscribe()
        if acks.failures:
            raise NotStored(f"{len(acks.failures)} not stored: {acks.failures[0]}")
        if len(asked) == len(rows):
            return True
        first, last = acks.stored[0], acks.stored[len(rows) - 1]
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
