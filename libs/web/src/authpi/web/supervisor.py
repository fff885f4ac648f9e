"""Background loops that must keep running: restarted with back-off when they fail."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from authpi.observability import get_logger
from authpi.web.runtime import Task

log = get_logger("authpi.supervisor")


async def supervise(
    name: str, task: Task, stop: asyncio.Event, on_failure: Callable[[str], None] | None = None
) -> None:
    delay = 0.2
    while not stop.is_set():
        try:
            await task(stop)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task.crashed", task=name)
            if on_failure is not None:
                on_failure(name)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, 5.0)
