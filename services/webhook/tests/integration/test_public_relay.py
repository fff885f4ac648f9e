"""The public-stream relay's publishing (authpi.webhook.public.relay): a batch reaches the
`<NS>_PUBLIC` stream in order, each event once under its evt_ id (a batch published again adds
nothing), and a batch the stream does not store raises, so the tailer's cursor stays."""

from __future__ import annotations

import uuid

import pytest

from authpi.contracts.subjects import public_stream
from authpi.eventstore.migrations import migrate
from authpi.eventstore.sqltext import render
from authpi.messaging.streams import ensure_streams, jetstream
from authpi.messaging.wire import publish_all
from authpi.testing.infra import new_namespace
from authpi.testing.scans import rows_read
from authpi.webhook.public import relay as relay_module
from authpi.webhook.public.relay import NotStored, PublicStreamRelay
from authpi.webhook.service import MIGRATIONS
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


async def _stored(nc, namespace: str, count: int) -> list[str]:
    """The Nats-Msg-Id of every message in the public stream, in stream order."""
    js = jetstream(nc)
    stream = public_stream(namespace)
    assert (await js.stream_info(stream)).state.messages == count
    sub = await js.subscribe(f"{namespace}.public.>", stream=stream, ordered_consumer=True)
    try:
        return [(await sub.next_msg(timeout=10)).headers["Nats-Msg-Id"] for _ in range(count)]
    finally:
        await sub.unsubscribe()


@pytest.mark.parametrize("stored_before", [[0], [250], [499], [0, 1, 2], [100, 300]])
async def test_a_batch_part_of_which_is_already_stored_is_completed_with_each_event_once(
    nc, namespace, stored_before
):
    """Only the first and the last message of a batch ask for an acknowledgement; a batch some of
    whose events are already in the stream (a crash after a partial publish) does not pass the
    sequence check and goes again with one acknowledgement each: every event ends up stored
    once, none lost."""
    await ensure_streams(jetstream(nc), namespace)
    relay = PublicStreamRelay("", "unused", nc, namespace)
    batch = rows(500)
    await relay.handle(None, [batch[i] for i in stored_before])  # type: ignore[arg-type]
    await relay.handle(None, batch)  # type: ignore[arg-type]
    ids = await _stored(nc, namespace, 500)
    assert sorted(ids) == sorted(r.id for r in batch)
    new = [r.id for i, r in enumerate(batch) if i not in stored_before]
    assert ids[len(stored_before) :] == new  # the rest in the batch's order


async def test_a_batch_interleaved_with_another_publisher_is_checked_message_by_message(
    nc, namespace, monkeypatch
):
    """A foreign message stored between the first and the last breaks the sequence arithmetic:
    the batch is checked message by message again and nothing is lost or stored twice."""
    js = jetstream(nc)
    await ensure_streams(js, namespace)
    relay = PublicStreamRelay("", "unused", nc, namespace)
    batch = rows(400)
    calls = []

    async def interleaved(client, messages):
        messages = list(messages)
        calls.append(sum(1 for m in messages if m.reply))
        if len(calls) > 1:
            return await publish_all(client, messages)
        await publish_all(client, messages[:1])
        await js.publish(
            f"{namespace}.public.acc_other.user.created",
            b"{}",
            headers={"Nats-Msg-Id": "evt_other"},
        )
        return 1 + await publish_all(client, messages[1:])

    monkeypatch.setattr(relay_module, "publish_all", interleaved)
    await relay.handle(None, batch)  # type: ignore[arg-type]
    assert calls == [2, 400]  # first and last, then each
    ids = await _stored(nc, namespace, 401)
    assert ids == [batch[0].id, "evt_other", *(r.id for r in batch[1:])]
    assert relay.published == 400


async def test_the_held_back_check_probes_the_commit_order_index_not_the_whole_log(pool, namespace):
    """After each drain a tailer asks whether any row lies past its cursor. On a log of tens of
    thousands of rows with the cursor at its end, that reads a row or two, not the table (an
    EXISTS form was answered with a sequential scan of the whole log, each time, whenever the log
    had grown past its statistics; here it has none)."""
    schema = f"{namespace}_webhook"
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await migrate(conn, schema, MIGRATIONS)
        await conn.execute(
            render(
                "INSERT INTO {schema}.audit_events (id, account_id, type, occurred_at, event)"
                " SELECT 'evt_' || lpad(n::text, 26, '0'), 'acc_held', 'user.created', n,"
                "  json_build_object()"
                " FROM generate_series(1, 30000) AS n",
                schema=schema,
            )
        )
        cur = await conn.execute(
            render(
                "SELECT tx_id::text::bigint, max(seq) FROM {schema}.audit_events GROUP BY 1",
                schema=schema,
            )
        )
        end = await cur.fetchone()
    relay = PublicStreamRelay("", schema, None, namespace)  # type: ignore[arg-type]

    async def checks(conn) -> None:
        assert await relay.held_back(conn, (end[0], end[1] - 1))
        assert not await relay.held_back(conn, (end[0], end[1]))

    seq_read, idx_fetched = await rows_read(pool.conninfo, schema, "audit_events", checks)
    assert seq_read == 0 and idx_fetched <= 2
