"""The rotation contract as pure functions over epoch milliseconds (idp-api.md 13.3): a new key
per algorithm at 01:00 UTC on the last day of each month, keys kept until the first rotation
after their 45th day, tokens capped at 21 days so they always expire while their key is
published."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

import msgspec

from authpi.token.domain.signing_key import ALGORITHMS

DAY_MS = 86_400_000
OVERLAP_MS = 45 * DAY_MS
MAX_TOKEN_TTL_S = 21 * 86_400


class KeyAge(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    alg: str
    created_at: int


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    create: list[str]  # algorithms that need a new key now
    retire: list[str]  # kids that leave the JWKS now

    @property
    def empty(self) -> bool:
        return not self.create and not self.retire


def _instant(year: int, month: int) -> int:
    last_day = calendar.monthrange(year, month)[1]
    return int(datetime(year, month, last_day, 1, tzinfo=UTC).timestamp() * 1000)


def last_rotation_at(now_ms: int) -> int:
    """The latest scheduled rotation instant at or before `now_ms`."""
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    this_month = _instant(now.year, now.month)
    if this_month <= now_ms:
        return this_month
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return _instant(year, month)


def next_rotation_after(now_ms: int) -> int:
    """The first scheduled rotation instant strictly after `now_ms`."""
    now = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
    this_month = _instant(now.year, now.month)
    if this_month > now_ms:
        return this_month
    year, month = (now.year, now.month + 1) if now.month < 12 else (now.year + 1, 1)
    return _instant(year, month)


def plan(active: list[KeyAge], now_ms: int) -> Plan:
    """What an issuer's key set needs at `now_ms`: a key for every algorithm that has none or
    whose newest key predates the last rotation instant; retirement of every key older than the
    overlap at that instant, unless it is still the newest key of its algorithm."""
    rotated_at = last_rotation_at(now_ms)
    newest: dict[str, KeyAge] = {}
    for key in active:
        if key.alg not in newest or key.created_at > newest[key.alg].created_at:
            newest[key.alg] = key
    create = [alg for alg in ALGORITHMS if alg not in newest or newest[alg].created_at < rotated_at]
    keep = {newest[alg].kid for alg in newest if alg not in create}
    retire = [
        key.kid
        for key in active
        if key.kid not in keep and rotated_at - key.created_at > OVERLAP_MS
    ]
    return Plan(create=create, retire=retire)
