"""The portal's outbox: queued jobs run after the answer, a full queue drops new jobs instead of
holding a request, one failing job does not stop the others, and a stop finishes what is
queued."""

from __future__ import annotations

import asyncio

from authpi.token.portal.outbox import Outbox


async def test_jobs_run_and_a_failure_does_not_stop_the_rest():
    outbox = Outbox(capacity=10, workers=2)
    done: list[str] = []
    stop = asyncio.Event()

    async def ok(name: str) -> None:
        done.append(name)

    async def broken() -> None:
        raise RuntimeError("smtp down")

    assert outbox.submit("a", lambda: ok("a"))
    assert outbox.submit("broken", broken)
    assert outbox.submit("b", lambda: ok("b"))
    runner = asyncio.create_task(outbox.run(stop))
    async with asyncio.timeout(5):
        while len(done) < 2:
            await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(runner, 5)
    assert sorted(done) == ["a", "b"]


async def test_a_full_queue_drops_the_job_without_waiting():
    outbox = Outbox(capacity=2, workers=1)

    async def nothing() -> None:
        return None

    assert [outbox.submit(str(i), nothing) for i in range(3)] == [True, True, False]
    assert outbox.pending() == 2


async def test_stop_finishes_what_is_queued():
    outbox = Outbox(capacity=10, workers=1)
    done: list[int] = []
    stop = asyncio.Event()

    async def job(i: int) -> None:
        await asyncio.sleep(0.01)
        done.append(i)

    for i in range(5):
        outbox.submit(f"job-{i}", lambda i=i: job(i))
    stop.set()
    await asyncio.wait_for(outbox.run(stop), 5)
    assert done == [0, 1, 2, 3, 4]
