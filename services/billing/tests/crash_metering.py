"""A billing-metering consumer that kills itself (SIGKILL) right after committing its Nth fetch,
before acknowledging it: the crash window of the metering test. Run as a real subprocess."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from nats.aio.msg import Msg
from psycopg_pool import AsyncConnectionPool

from authpi.billing.reactions.metering import MeteringReaction
from authpi.crypto.clock import SystemClock
from authpi.messaging.facts import FactConsumer
from authpi.messaging.streams import connect, jetstream


class CrashingConsumer(FactConsumer):
    crash_after = 1
    fetches = 0

    async def _apply_batch(self, msgs: list[Msg]) -> None:
        await super()._apply_batch(msgs)  # committed
        self.fetches += 1
        if self.fetches >= self.crash_after:
            os.kill(os.getpid(), signal.SIGKILL)  # before any ack


async def main(schema: str, namespace: str, crash_after: int, batch: int) -> None:
    dsn, nats_url = os.environ["AUTHPI_DATABASE_URL"], os.environ["AUTHPI_NATS_URL"]
    pool: AsyncConnectionPool = AsyncConnectionPool(dsn, min_size=1, max_size=4, open=False)
    await pool.open(wait=True)
    nc = await connect(nats_url)
    consumer = CrashingConsumer(
        js=jetstream(nc), pool=pool, dsn=dsn, projection=MeteringReaction(schema, SystemClock()),
        namespace=namespace, batch_size=batch,
    )  # fmt: skip
    consumer.crash_after = crash_after
    await consumer.run(asyncio.Event())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--crash-after", type=int, required=True)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.schema, args.namespace, args.crash_after, args.batch))
