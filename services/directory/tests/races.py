"""Writes racing on one ETag in the directory's API tests (core-api.md 2.4): sent at once,
exactly one wins and the other is refused with 412."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from authpi_admin.errors import PreconditionFailedError


async def one_wins(*writes: Awaitable[Any]) -> tuple[Any, PreconditionFailedError]:
    """The winner's answer and the loser's error, after asserting there is one of each."""
    results = await asyncio.gather(*writes, return_exceptions=True)
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, PreconditionFailedError)]
    assert len(wins) == 1 and len(losses) == 1, results
    return wins[0], losses[0]
