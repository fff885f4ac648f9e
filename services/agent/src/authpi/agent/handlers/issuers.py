"""Which issuers exist, for the agent service: its own issuers_view, kept by the agent-issuers
consumer from the directory's events (no call to the directory, no read of its tables).

That view trails the directory by the relay and consumer latency (milliseconds). A client that
creates an issuer and at once an agent in it must not see a 404 for it, so an issuer id that is
not known yet but was minted moments ago (its UUIDv7 time, platform.md OP-1) is waited for, a
bounded while; any other unknown id is a 404 at once."""

from __future__ import annotations

import asyncio
import re

from authpi.agent.queries.issuers import IssuerQueries, IssuerRow
from authpi.errors import NotFound
from authpi.web.runtime import Runtime

FRESH_MS = 30_000  # an id minted this recently may still be on its way here
WAIT_S = 5.0
_BASE36_ID = re.compile(r"[a-z]+_([0-9a-z]{25})")


def minted_at(public_id: str) -> int | None:
    """The creation time (epoch ms) of an id generated as a base36 UUIDv7, else None."""
    match = _BASE36_ID.fullmatch(public_id)
    if match is None:
        return None
    value = int(match[1], 36)
    if value >> 128 or (value >> 76) & 0xF != 7:
        return None
    return value >> 80


def require_known_id(value: str) -> None:
    """Path ids PostgreSQL cannot hold (NUL, lone surrogates) or that are absurdly long name
    nothing: 404, never a 500."""
    if len(value) > 200 or "\x00" in value or not value.isprintable():
        raise NotFound("no such resource", reason="path.unknown_id")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise NotFound("no such resource", reason="path.unknown_id") from None


class IssuerGate:
    def __init__(self, rt: Runtime, queries: IssuerQueries) -> None:
        self.rt = rt
        self.queries = queries

    async def require(self, account_id: str, issuer_id: str) -> IssuerRow:
        """The live issuer `issuer_id` of `account_id`, or 404."""
        require_known_id(issuer_id)
        row = await self._find(issuer_id)
        if row is None and self._fresh(issuer_id):
            row = await self._wait_for(issuer_id)
        if row is None or row.account_id != account_id or row.status == "deleted":
            raise NotFound("no such issuer", reason="issuer.not_found")
        return row

    def _fresh(self, issuer_id: str) -> bool:
        minted = minted_at(issuer_id)
        now = self.rt.clock.now_ms()
        return minted is not None and now - FRESH_MS <= minted <= now + FRESH_MS

    async def _find(self, issuer_id: str) -> IssuerRow | None:
        async with self.rt.pool.connection() as conn:
            return await self.queries.issuer(conn, issuer_id)

    async def _wait_for(self, issuer_id: str) -> IssuerRow | None:
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + WAIT_S, 0.005
        while loop.time() < deadline:
            await asyncio.sleep(delay)
            row = await self._find(issuer_id)
            if row is not None:
                return row
            delay = min(delay * 2, 0.2)
        return None
