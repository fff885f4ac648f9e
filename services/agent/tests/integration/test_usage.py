"""Verifier usage from token facts (platform.md 3.3, DESIGN.md 3): `machine.token.issued` facts
published in batches on the FACTS stream raise the `usage_count` and `last_used_at` of the agent
verifier that minted them, each batch counted once even when it is published twice."""

from __future__ import annotations

import uuid

from authpi.agent.reactions.usage import UsageReaction
from authpi.agent.service import MIGRATIONS
from authpi.contracts.facts import FactBatch, MachineTokenIssued, encode_batch
from authpi.contracts.subjects import fact_subject
from authpi.eventstore.migrations import migrate
from authpi.eventstore.sqltext import render
from authpi.messaging.facts import FactConsumer
from authpi.messaging.streams import ensure_streams, jetstream
from authpi.testing.plugin import eventually, running
from services.agent.tests.factories import token_issued


def minted(tenant, agent_id: str | None, verifier_id: str | None, at: int) -> MachineTokenIssued:
    return token_issued(
        agent_id, verifier_id, at, account_id=tenant.account_id, issuer_id=tenant.issuer_id,
        scope="a", aud="https://api.test", jti=uuid.uuid4().hex[:18], expires_at=at + 300_000,
        dat_type="agent" if agent_id else None,
    )  # fmt: skip


async def publish(platform, facts: list[MachineTokenIssued], batch_id: str | None = None) -> str:
    batch = FactBatch(batch_id=batch_id or uuid.uuid4().hex, facts=facts)
    js = platform.handle.rt.js
    await js.publish(
        fact_subject("machine.token.issued", platform.namespace),
        encode_batch(batch),
        headers={"Nats-Msg-Id": batch.batch_id},
    )
    return batch.batch_id


async def test_token_facts_count_uses_of_agent_verifiers(tenant, platform):
    agent = await tenant.agents().create({"name": "bot"})
    verifiers = tenant.verifiers(agent.id)
    used = await verifiers.create({"type": "secret"})
    idle = await verifiers.create({"type": "secret"})
    t0 = 1_800_000_000_000
    batch = await publish(platform, [minted(tenant, agent.id, used.id, t0 + i) for i in range(3)])
    await publish(platform, [minted(tenant, agent.id, used.id, t0 + 99)], batch_id=batch)  # dup
    await publish(
        platform, [minted(tenant, None, None, t0 + 500), minted(tenant, agent.id, used.id, t0 + 50)]
    )

    async def counted() -> dict[str, tuple[int, int | None]] | None:
        found = {v.id: (v.usage_count, v.last_used_at) for v in (await verifiers.list()).data}
        return found if found[used.id][0] == 4 else None

    found = await eventually(counted)
    assert found == {used.id: (4, t0 + 50), idle.id: (0, None)}


async def test_an_undecodable_batch_is_set_aside_and_later_ones_count(tenant, platform):
    agent = await tenant.agents().create({"name": "bot"})
    verifier = await tenant.verifiers(agent.id).create({"type": "secret"})
    js = platform.handle.rt.js
    await js.publish(fact_subject("machine.token.issued", platform.namespace), b"{not json")
    await publish(platform, [minted(tenant, agent.id, verifier.id, 1_800_000_000_000)])

    async def counted() -> bool:
        return (await tenant.verifiers(agent.id).list()).data[0].usage_count == 1

    await eventually(counted)


async def counts(pool, schema: str) -> dict[str, tuple[int, int | None]]:
    query = render(
        "SELECT verifier_id, usage_count, last_used_at FROM {schema}.verifier_usage", schema=schema
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query)
        return {v: (n, at) for v, n, at in await cur.fetchall()}


async def test_a_restarted_consumer_counts_each_batch_once(infra, pool, nc, namespace):
    """The runtime resumes after the stream sequence stored with the counts, so batches counted
    before a restart are not counted again, and those published meanwhile are."""
    schema = f"{namespace}_agent"
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await migrate(conn, schema, MIGRATIONS)
        await conn.execute(
            render(
                "INSERT INTO {schema}.verifier_usage (verifier_id, agent_id)"
                " VALUES ('avf_1', 'agt_1')",
                schema=schema,
            )
        )
    js = jetstream(nc)
    await ensure_streams(js, namespace)

    async def publish_one(at: int) -> None:
        batch = FactBatch(batch_id=uuid.uuid4().hex, facts=[token_issued("agt_1", "avf_1", at)])
        subject = fact_subject("machine.token.issued", namespace)
        await js.publish(subject, encode_batch(batch), headers={"Nats-Msg-Id": batch.batch_id})

    def consumer() -> FactConsumer:
        reaction = UsageReaction(schema)
        return FactConsumer(
            js=js, pool=pool, dsn=infra.dsn, projection=reaction, namespace=namespace
        )

    await publish_one(10)
    await publish_one(20)
    async with running(consumer()):
        await eventually(lambda: _counted(pool, schema, 2))
    await publish_one(30)
    async with running(consumer()):
        await publish_one(40)  # counted after the others: a recount would show by then
        await eventually(lambda: _counted(pool, schema, 4))
    assert await counts(pool, schema) == {"avf_1": (4, 40)}


async def _counted(pool, schema: str, n: int) -> bool:
    return (await counts(pool, schema)).get("avf_1", (0, None))[0] >= n
