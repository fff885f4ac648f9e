"""Consume one account's public events from AuthPI's NATS public stream (README "Integrator
subscriptions"). Needs only nats-py (`pip install nats-py`). Run with the values
`authpi integrators add --account acc_…` printed:

    NATS_URL=nats://127.0.0.1:4222 AUTHPI_INTEGRATOR_USER=int_… AUTHPI_INTEGRATOR_PASSWORD=… \\
    AUTHPI_ACCOUNT_ID=acc_… python examples/integrator_consumer.py

It creates (or resumes) the credential's durable consumer, prints each event as one JSON line and
acknowledges it after it is handled: a restart resumes after the last acknowledged event.
Deliveries are at least once; deduplicate on the event `id` (also the `Nats-Msg-Id` header)."""

from __future__ import annotations

import asyncio
import json
import os

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy


async def main() -> None:
    namespace = os.environ.get("AUTHPI_NAMESPACE", "authpi")
    user = os.environ["AUTHPI_INTEGRATOR_USER"]
    account = os.environ["AUTHPI_ACCOUNT_ID"]
    stream = namespace.upper().replace(".", "_").replace("-", "_") + "_PUBLIC"
    nc = await nats.connect(
        os.environ.get("NATS_URL", "nats://127.0.0.1:4222"),
        user=user,
        password=os.environ["AUTHPI_INTEGRATOR_PASSWORD"],
        inbox_prefix=f"_INBOX.{user}",  # the only inbox the credential may use
    )
    js = nc.jetstream()
    # The consumer's name is the credential's user; its filter, the account's public subjects.
    # Creating it again with the same configuration is harmless (it keeps its position).
    await js.add_consumer(
        stream,
        ConsumerConfig(
            name=user,
            durable_name=user,
            filter_subject=f"{namespace}.public.{account}.>",
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
        ),
    )
    sub = await js.pull_subscribe_bind(durable=user, stream=stream)
    try:
        while True:
            try:
                msgs = await sub.fetch(100, timeout=5)
            except NatsTimeout:
                continue
            for msg in msgs:
                event = json.loads(msg.data)
                print(json.dumps(event), flush=True)  # handle the event here
                await msg.ack()
    finally:
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
