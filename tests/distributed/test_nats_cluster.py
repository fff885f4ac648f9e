"""The local NATS JetStream cluster of the distributed run (embedded.servers.NatsCluster): three
nodes on loopback with routes between them, the streams replicated on all three, and a publish
that survives the loss of a node, which rejoins when it comes back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from authpi.contracts.subjects import events_stream
from authpi.crypto.clock import SystemClock
from authpi.embedded.servers import NatsCluster
from authpi.errors import TemporarilyUnavailable
from authpi.messaging import auth as nats_auth
from authpi.messaging.streams import connect, ensure_streams, jetstream
from authpi.testing.infra import new_namespace
from authpi.testing.plugin import eventually
from authpi.token.caches.lockouts import (
    CREDENTIAL_POLICY,
    POLICIES,
    Lockouts,
    bucket_name,
    declare_buckets,
)

pytestmark = pytest.mark.distributed


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    data = tmp_path_factory.mktemp("nats-cluster")
    auth, _, config = nats_auth.embedded(data, None)
    nodes = NatsCluster(data / "nodes", config=config)
    nodes.start()
    yield nodes, auth
    nodes.stop()


async def _published(js, subject: str, payload: bytes, msg_id: str) -> int:
    """Publish until acknowledged (a stream whose leader was lost elects another first)."""

    async def attempt() -> int:
        try:
            ack = await js.publish(subject, payload, timeout=2, headers={"Nats-Msg-Id": msg_id})
        except (NatsError, TimeoutError):  # no leader yet: try again
            return 0
        return ack.seq

    return await eventually(attempt, timeout=30, interval=0.2)


async def _read_all(js, subject: str, ns: str, count: int) -> list[bytes] | None:
    """Every message of `subject`, in order, by a new consumer; None while the stream has no
    leader to serve one (just after the loss of a node)."""
    try:
        sub = await js.pull_subscribe(subject, durable=None, stream=events_stream(ns))
        got: list[bytes] = []
        while len(got) < count:
            got += [m.data for m in await sub.fetch(count - len(got), timeout=5)]
        await sub.unsubscribe()
    except (NatsError, TimeoutError):
        return None
    return got


async def test_streams_replicated_on_three_nodes_and_survive_one_node_lost(cluster):
    nodes, auth = cluster
    ns = new_namespace()
    nc = await connect(nodes.url, auth=auth)
    try:
        js = jetstream(nc)
        await ensure_streams(js, ns, replicas=3)
        info = await js.stream_info(events_stream(ns))
        assert info.config.num_replicas == 3
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2
        subject = f"{ns}.evt.acc_1.user.created"
        before = [await _published(js, subject, b"%d" % i, f"m{i}") for i in range(20)]
        # Lose the stream's leader: the worst node to lose.
        leader = next(i for i, n in enumerate(nodes.nodes) if n.name == info.cluster.leader)
        nodes.kill(leader)
        after = [await _published(js, subject, b"%d" % i, f"m{i}") for i in range(20, 40)]
        assert sorted(before + after) == list(range(1, 41))  # none lost, none doubled
        assert await eventually(lambda: _read_all(js, subject, ns, 40), timeout=60) == [
            b"%d" % i for i in range(40)
        ]
        await asyncio.to_thread(nodes.restart, leader)

        async def rejoined() -> bool:
            state = await js.stream_info(events_stream(ns))
            peers = state.cluster.replicas or [] if state.cluster else []
            return len(peers) == 2 and all(p.current for p in peers)

        await eventually(rejoined, timeout=30, interval=0.2)
    finally:
        await nc.close()


@pytest.mark.quick
async def test_lockout_buckets_declared_with_the_streams_keep_three_copies(cluster):
    """`authpi streams --replicas 3` also declares the token service's lockout buckets: a lock
    held in a cluster outlives the loss of a node. Declaring again without a count keeps them."""
    async with _buckets_of_three(cluster) as (js, ns):
        await declare_buckets(js, ns, None)
        for policy in POLICIES:
            info = await js.stream_info(f"KV_{bucket_name(ns, policy)}")
            assert info.config.num_replicas == 3
            assert info.config.max_age == policy.forget_ms / 1000
        lockouts = Lockouts(js, ns, SystemClock(), CREDENTIAL_POLICY)
        assert await lockouts.failed("i_1", "someone") == 0  # the service uses the bucket
        kv = await js.key_value(bucket_name(ns, CREDENTIAL_POLICY))
        assert len(await kv.keys()) == 1


@contextlib.asynccontextmanager
async def _buckets_of_three(cluster) -> AsyncIterator[tuple[JetStreamContext, str]]:
    """A new namespace's lockout buckets, three copies each, and a connection to the cluster."""
    nodes, auth = cluster
    ns = new_namespace()
    nc = await connect(nodes.url, auth=auth)
    try:
        js = jetstream(nc)
        await declare_buckets(js, ns, 3)
        yield js, ns
    finally:
        await nc.close()


async def test_a_failure_that_cannot_be_counted_is_a_retryable_503(cluster):
    """With two of three nodes gone the lockout bucket has no quorum: a failed credential that
    cannot be counted is refused as temporarily unavailable (503, Retry-After), never answered as
    if it had been counted, and never a 500. The nodes come back for the tests after this one."""
    nodes = cluster[0]
    async with _buckets_of_three(cluster) as (js, ns):
        lockouts = Lockouts(js, ns, SystemClock(), CREDENTIAL_POLICY)
        assert await lockouts.failed("i_1", "someone") == 0
        nodes.kill(1)
        nodes.kill(2)
        try:
            with pytest.raises(TemporarilyUnavailable) as refused:
                await lockouts.failed("i_1", "someone")
            assert refused.value.status == 503 and refused.value.retry_after == 1
        finally:
            await asyncio.to_thread(nodes.restart, 1)
            await asyncio.to_thread(nodes.restart, 2)

        async def counted() -> int | None:
            try:
                return await lockouts.failed("i_1", "someone") + 1
            except TemporarilyUnavailable:
                return None

        await eventually(counted, timeout=60, interval=0.5)  # quorum again: it counts
