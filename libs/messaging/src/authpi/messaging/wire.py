"""Publishing many messages in one write. nats-py has no batch publish: `Client.publish` validates,
builds and queues one command and wakes the flusher with a future per message, which costs more
than JetStream's storing of a small message. `publish_all` queues the same HPUB commands that
`publish` would build (a Nats-Msg-Id header each) as one buffer and flushes once.

It goes through the client's outbound queue (`_send_command`, `_flush_pending`, nats-py 2.x, the
version pinned in requirements.txt), so reconnect buffering and ordering with the client's other
writes are those of `publish`. Subjects and ids are the caller's own (built from validated ids);
a payload over the server's max_payload is refused here as `publish` refuses it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from nats import errors
from nats.aio.client import Client as NATS


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
