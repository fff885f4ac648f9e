"""The batched fact publisher against real NATS JetStream: a fact after a quiet spell goes out at
once, the facts added while the publisher spaces its batches go out together in one batch, and
every fact is published exactly once (a last flush on stop)."""

from __future__ import annotations

import asyncio

from nats.aio.client import Client as NATS

from authpi.contracts.facts import MachineTokenIssued, decode_batch
from authpi.contracts.subjects import facts_stream
from authpi.messaging.publisher import FactPublisher
from authpi.messaging.streams import ensure_streams, jetstream
from authpi.testing.plugin import eventually


def _fact(jti: str) -> MachineTokenIssued:
    return MachineTokenIssued(
        account_id="acc_1", issuer_id="iss_1", client_id="c_1", scope="", aud="c_1", jti=jti,
        issued_at=1, expires_at=2,
    )  # fmt: skip


async def _batches(nc: NATS, namespace: str) -> list[list[str]]:
    """The jtis of every batch in the namespace's FACTS stream, in order."""
    js = jetstream(nc)
    stream = facts_stream(namespace)
    count = (await js.stream_info(stream)).state.messages
    out = []
    for seq in range(1, count + 1):
        batch = decode_batch((await js.get_msg(stream, seq)).data or b"")
        out.append([f.jti for f in batch.facts])  # type: ignore[union-attr]
    return out


async def test_first_fact_at_once_then_batches(nc: NATS, namespace: str) -> None:
    js = jetstream(nc)
    await ensure_streams(js, namespace)
    # A long spacing, so the facts added after the first publish must wait for the next batch.
    publisher = FactPublisher(js, namespace, interval=3.0)
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop))
    try:
        publisher.add(_fact("j1"))

        async def first() -> bool:
            return await _batches(nc, namespace) == [["j1"]]

        assert await eventually(first, timeout=10)  # not held for the interval
        for jti in ("j2", "j3", "j4"):
            publisher.add(_fact(jti))

        async def second() -> bool:
            return len(await _batches(nc, namespace)) == 2

        await eventually(second, timeout=20)
        assert await _batches(nc, namespace) == [["j1"], ["j2", "j3", "j4"]]
        publisher.add(_fact("j5"))
    finally:
        stop.set()
        await task
    # Stopped while spacing: the last flush publishes what waits, once.
    assert await _batches(nc, namespace) == [["j1"], ["j2", "j3", "j4"], ["j5"]]
    assert publisher.published == 5
