"""The public-stream relay's publishing (authpi.webhook.public.relay): a batch reaches the
`<NS>_PUBLIC` stream in order, each event once under its evt_ id (a batch published again adds
nothing), and a batch the stream does not store raises, so the tailer's cursor stays."""

from __future__ import annotations

import uuid

import pytest

from authpi.contracts.subjects import public_stream
from authpi.messaging.streams import ensure_streams, jetstream
from authpi.testing.infra import new_namespace
from authpi.webhook.public.relay import NotStored, PublicStreamRelay
from authpi.webhook.tailer import AuditRow


def row(i: int) -> AuditRow:
    return AuditRow(
        seq=i, tx_id=1, id=f"evt_{uuid.uuid4().hex[:26].upper()}", account_id="acc_relay",
        type="machine.token.issued", occurred_at=1_700_000_000_000 + i, issuer_id="i_x",
        user_id=None, client_id="c_x", agent_id=None, org_id=None, event=b'{"n":%d}' % i,
    )  # fmt: skip


def rows(count: int) -> list[AuditRow]:
    return [row(i) for i in range(count)]


async def test_a_batch_reaches_the_public_stream_once_and_in_order(nc, namespace):
    js = jetstream(nc)
    await ensure_streams(js, namespace)
    relay = PublicStreamRelay("", "unused", nc, namespace)
    batch = rows(600)
    await relay.handle(None, batch)  # type: ignore[arg-type]  # the connection is not used
    await relay.handle(None, batch)  # type: ignore[arg-type]  # again: deduplicated
    assert relay.published == 1200
    stream = public_stream(namespace)
    assert (await js.stream_info(stream)).state.messages == 600
    sub = await js.subscribe(f"{namespace}.public.>", stream=stream, ordered_consumer=True)
    try:
        got = [await sub.next_msg(timeout=10) for _ in batch]
    finally:
        await sub.unsubscribe()
    assert [m.headers["Nats-Msg-Id"] for m in got] == [r.id for r in batch]
    assert [m.data for m in got] == [r.event for r in batch]
    assert {m.subject for m in got} == {f"{namespace}.public.acc_relay.machine.token.issued"}


async def test_a_batch_the_stream_does_not_store_raises(nc):
    relay = PublicStreamRelay("", "unused", nc, new_namespace())  # no streams: no responders
    with pytest.raises(NotStored):
        await relay.handle(None, rows(3))  # type: ignore[arg-type]
    assert relay.published == 0
