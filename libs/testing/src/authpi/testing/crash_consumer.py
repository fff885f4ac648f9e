"""A probe consumer that kills itself (SIGKILL) right after committing its Nth batch, before
acknowledging it: the crash window the consumer tests exercise. Run as a real subprocess."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

from psycopg_pool import AsyncConnectionPool

from authpi.messaging.consumer import ProjectionConsumer
from authpi.messaging.streams import connect, jetstream
from authpi.testing.probe import ProbeProjection


async def main(schema: str, namespace: str, crash_after: int, batch: int) -> None:
    dsn, nats_url = os.environ["AUTHPI_DATABASE_URL"], os.environ["AUTHPI_NATS_URL"]
    pool: AsyncConnectionPool = AsyncConnectionPool(dsn, min_size=1, max_size=4, open=False)
    await pool.open(wait=True)
    nc = await connect(nats_url)
    batches = 0

    def after_commit(_: int) -> None:
        nonlocal batches
        batches += 1
        if batches >= crash_after:
            os.kill(os.getpid(), signal.SIGKILL)

    consumer = ProjectionConsumer(
        js=jetstream(nc), pool=pool, dsn=dsn, projection=ProbeProjection(schema),
        namespace=namespace, batch_size=batch, after_commit=after_commit,
    )  # fmt: skip
    await consumer.run(asyncio.Event())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--crash-after", type=int, default=2)
    parser.add_argument("--batch", type=int, default=50)
    a = parser.parse_args()
    asyncio.run(main(a.schema, a.namespace, a.crash_after, a.batch))
