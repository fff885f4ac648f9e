"""Bounded waits for an id that may be in flight (an API key or an account created a moment ago,
whose event has not reached this process yet).

A miss waits only when the id could be that: a well-formed public id minted in the last few
minutes (ids are UUIDv7, so they carry their creation time). Random or old ids are refused at
once, and the waits are bounded per request (`timeout`) and in number (`limit`): a flood of bad
ids costs no database work beyond the caller's one indexed lookup, and never stalls the server.
A waiter is woken by the ordered consumer's callback, never by polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from authpi.crypto.ids import minted_at

MINTED_WITHIN_MS = 5 * 60 * 1000  # an id older than this is not "a moment ago"
CLOCK_SKEW_MS = 60 * 1000


def wall_ms() -> int:
    # Ids are minted from the wall clock (RandomIds), so their age is measured against it too.
    return time.time_ns() // 1_000_000


class Arrivals:
    def __init__(self, prefix: str, *, limit: int = 512, now_ms: Callable[[], int] = wall_ms):
        self.prefix = prefix
        self.limit = limit
        self._now_ms = now_ms
        self._waiting: dict[str, tuple[asyncio.Event, int]] = {}
        self._count = 0
        self.refused = 0  # waits refused because `limit` waiters were already waiting

    def may_be_in_flight(self, public_id: str) -> bool:
        minted = minted_at(public_id, self.prefix)
        if minted is None:
            return False
        now = self._now_ms()
        return now - MINTED_WITHIN_MS <= minted <= now + CLOCK_SKEW_MS

    def arrived(self, public_id: str) -> None:
        waiting = self._waiting.get(public_id)
        if waiting is not None:
            waiting[0].set()

    def recheck(self) -> None:
        """Wake every waiter to look again (after a reload)."""
        for event, _ in self._waiting.values():
            event.set()

    async def wait(self, public_id: str, timeout: float, present: Callable[[], bool]) -> bool:
        """True once `present()` holds (checked now, then each time the id arrives), False after
        `timeout` seconds or at once when too many requests are waiting already."""
        if present():
            return True
        if timeout <= 0 or not self.may_be_in_flight(public_id):
            return False
        if self._count >= self.limit:
            self.refused += 1
            return False
        event, users = self._waiting.get(public_id, (asyncio.Event(), 0))
        self._waiting[public_id] = (event, users + 1)
        self._count += 1
        try:
            async with asyncio.timeout(timeout):
                while not present():
                    event.clear()
                    await event.wait()
            return True
        except TimeoutError:
            return present()
        finally:
            self._count -= 1
            event, users = self._waiting[public_id]
            if users == 1:
                del self._waiting[public_id]
            else:
                self._waiting[public_id] = (event, users - 1)
