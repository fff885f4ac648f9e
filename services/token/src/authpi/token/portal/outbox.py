"""Work the portal does after it has answered: finding the account behind an address, issuing a
one-time mail token, recording its event and sending the mail. The mail-sending forms (forgot
password, login link) hand all of that to the outbox, whether or not an account exists, so both
answers take the same path and the same time; a slow or failing mail server never shows in a
page either.

The outbox is a bounded in-process queue drained by a few workers (a worker task of every
process that serves the portal). When it is full, a job is dropped with a warning rather than
held: the page a person sees has already been answered the same way. On shutdown the workers
finish what is queued, within the host's grace period."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from authpi.messaging.stopping import unless_stopped
from authpi.observability import get_logger

log = get_logger("authpi.token.portal")

Job = Callable[[], Awaitable[None]]
CAPACITY = 1000
WORKERS = 4


class Outbox:
    def __init__(self, *, capacity: int = CAPACITY, workers: int = WORKERS) -> None:
        self._queue: asyncio.Queue[tuple[str, Job]] = asyncio.Queue(capacity)
        self._workers = workers

    def submit(self, name: str, job: Job) -> bool:
        """Queue `job`; False (and a warning) when the queue is full."""
        try:
            self._queue.put_nowait((name, job))
        except asyncio.QueueFull:
            log.warning("portal.outbox_full", job=name)
            return False
        return True

    def pending(self) -> int:
        return self._queue.qsize()

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(self._workers):
                group.create_task(self._work(stop))

    async def _work(self, stop: asyncio.Event) -> None:
        while True:
            if stop.is_set():  # finish what is queued, then end
                try:
                    name, job = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
            else:
                got = await unless_stopped(self._queue.get(), stop)
                if got is None:
                    continue
                name, job = got
            try:
                await job()
            except Exception as exc:  # one failed job must not stop the others
                log.warning("portal.job_failed", job=name, error=type(exc).__name__)
            finally:
                self._queue.task_done()
