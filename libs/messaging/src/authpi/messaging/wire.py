"""Publishing many messages in one write. nats-py has no batch publish: `Client.publish` validates,
builds and queues one command and wakes the flusher with a future per message, which costs more
than JetStream's storing of a small message. `publish_all` queues the same HPUB commands that
`publish` would build (a Nats-Msg-Id header each) as one buffer and flushes once.

It goes through the client's outbound queue (`_send_command`, `_flush_pending`, nats-py 2.x, the
version pinned in requirements.txt), so reconnect buffering and ordering with the client's other
writes are those of `publish`. Subjects and ids are the caller's own (built from validated ids);
a payload over the server's max_payload is refused here as `publish` refuses it."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple

import msgspec
from nats import errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg


class Outgoing(NamedTuple):
    subject: str
    msg_id: str  # the Nats-Msg-Id header: JetStream drops a repeat within its duplicate window
    payload: bytes
    reply: str = ""  # "" asks for no acknowledgement


def hpub(message: Outgoing) -> bytes:
    """The protocol command `Client.publish(subject, payload, reply, {"Nats-Msg-Id": id})` sends."""
    header = b"NATS/1.0\r\nNats-Msg-Id: " + message.msg_id.encode() + b"\r\n\r\n"
    size = len(header) + len(message.payload)
    line = f"HPUB {message.subject} {message.reply} {len(header)} {size}\r\n".encode()
    return b"".join((line, header, message.payload, b"\r\n"))


async def publish_all(nc: NATS, messages: Iterable[Outgoing]) -> int:
    """Queue every message, in order, as one write, then flush; return how many."""
    if nc.is_closed:
        raise errors.ConnectionClosedError
    if nc.is_draining_pubs:
        raise errors.ConnectionDrainingError
    commands: list[bytes] = []
    for message in messages:
        if not message.subject or _unsafe(message.subject) or _unsafe(message.msg_id):
            raise errors.BadSubjectError
        if len(message.payload) > nc.max_payload:
            raise errors.MaxPayloadError
        commands.append(hpub(message))
    if commands:
        await nc._send_command(b"".join(commands))  # pyright: ignore[reportPrivateUsage]
        await nc._flush_pending()  # pyright: ignore[reportPrivateUsage]
    return len(commands)


def _unsafe(token: str) -> bool:
    """Whitespace would end the protocol line (or the header) early."""
    return " " in token or "\r" in token or "\n" in token or "\t" in token


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


async def publish_acknowledged(
    nc: NATS,
    messages: Sequence[Outgoing],
    asked: Collection[int],
    timeout: float = ACK_TIMEOUT_S,
) -> dict[int, PubAck]:
    """`publish_all` of `messages` (their own `reply` ignored), the ones at the indexes `asked`
    asking JetStream for its acknowledgement on a reply subject of one inbox for the batch:
    those acknowledgements by index (a duplicate's says so). NotStored when one of them is not
    stored or does not answer within `timeout`."""
    acks = Acks(len(asked))
    inbox = nc.new_inbox()
    # nats-py leaves the type of `subscribe`'s future parameter open.
    sub = await nc.subscribe(f"{inbox}.*", cb=acks.answered)  # pyright: ignore[reportUnknownMemberType]
    try:
        replies = (f"{inbox}.{i}" if i in asked else "" for i in range(len(messages)))
        await publish_all(nc, (m._replace(reply=r) for m, r in zip(messages, replies, strict=True)))
        try:
            await asyncio.wait_for(acks.done.wait(), timeout)
        except TimeoutError:
            raise NotStored(f"{acks.missing} of {len(asked)} not acknowledged") from None
    finally:
        await sub.unsubscribe()
    if acks.failures:
        raise NotStored(f"{len(acks.failures)} not stored: {acks.failures[0]}")
    return acks.stored
