"""Publishing many messages in one write (authpi.messaging.wire) against real NATS: each command
is byte for byte the one `Client.publish` sends, and JetStream stores the messages in order,
with their Nats-Msg-Id (a repeat is dropped), answering only the messages that ask."""

from __future__ import annotations

import asyncio
import json

import pytest
from nats import errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.protocol import command

from authpi.contracts.subjects import public_stream
from authpi.messaging.streams import ensure_streams, jetstream
from authpi.messaging.wire import Outgoing, hpub, publish_all


def test_a_command_is_the_one_publish_builds():
    message = Outgoing("ns.public.acc_1.user.created", "evt_01ABC", b'{"a":"\\r\\n"}', "_INBOX.x.1")
    header = b"NATS/1.0\r\nNats-Msg-Id: evt_01ABC\r\n\r\n"
    expected = command.hpub_cmd(message.subject, message.reply, header, message.payload)
    assert hpub(message) == expected
    assert hpub(message._replace(reply="")) == command.hpub_cmd(
        message.subject, "", header, message.payload
    )


async def test_messages_are_stored_in_order_once_and_only_the_asking_ones_answered(
    nc: NATS, namespace: str
) -> None:
    js = jetstream(nc)
    await ensure_streams(js, namespace)
    answers: list[bytes] = []
    inbox = nc.new_inbox()

    async def answered(msg: Msg) -> None:
        answers.append(msg.data)

    sub = await nc.subscribe(f"{inbox}.*", cb=answered)
    subject = f"{namespace}.public.acc_1.user.created"
    messages = [
        Outgoing(subject, f"evt_{i:04d}", b'{"n":%d}' % i, f"{inbox}.{i}" if i in (0, 9) else "")
        for i in range(10)
    ]
    assert await publish_all(nc, messages) == 10
    assert await publish_all(nc, messages[:5]) == 5  # repeats: dropped by their ids
    await nc.flush()
    for _ in range(100):
        if len(answers) == 3:
            break
        await asyncio.sleep(0.05)
    await sub.unsubscribe()
    # messages 0 and 9, then 0 again as a duplicate; nothing else answered
    assert [json.loads(a).get("duplicate", False) for a in answers] == [False, False, True]
    assert [json.loads(a)["seq"] for a in answers] == [1, 10, 1]
    stream = public_stream(namespace)
    assert (await js.stream_info(stream)).state.messages == 10
    for seq in range(1, 11):
        stored = await js.get_msg(stream, seq)
        assert stored.data == b'{"n":%d}' % (seq - 1)
        assert (stored.headers or {}).get("Nats-Msg-Id") == f"evt_{seq - 1:04d}"


async def test_a_subject_or_id_that_would_break_the_protocol_line_is_refused(nc: NATS) -> None:
    for bad in (
        Outgoing("a b", "evt_1", b"{}"),
        Outgoing("a\r\nPUB x 1", "evt_1", b"{}"),
        Outgoing("a.b", "evt 1", b"{}"),
        Outgoing("", "evt_1", b"{}"),
    ):
        with pytest.raises(errors.BadSubjectError):
            await publish_all(nc, [bad])
    with pytest.raises(errors.MaxPayloadError):
        await publish_all(nc, [Outgoing("a.b", "evt_1", b"x" * (nc.max_payload + 1))])
