"""Trusted devices (core-api.md 3.9 sub-resources; contract 4.24): a device a user chose to
remember after passing a second factor, so that sign-ins from it skip the challenge until
`expires_at`.

The portal's device is a cookie `authpi_device=<dev_id>.<secret>` (HttpOnly, path-scoped to the
issuer, 256 random bits); the store keeps the SHA-256 of the secret. A cookie skips the challenge
only for the user and issuer its device was trusted for, while the device is neither expired nor
revoked: another person's cookie in the same browser changes nothing. A device trusted through
the Core API has no cookie; it is a record that can be listed and revoked. Lifetime: the issuer's
`settings.security.trusted_device_ttl` (seconds; default 30 days)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Meta
from authpi.contracts.mfa import UserDeviceRevoked
from authpi.crypto.clock import Clock
from authpi.crypto.ids import Ids, sha256_hex
from authpi.errors import NotFound
from authpi.eventstore.store import EventStore, fold
from authpi.token.domain import trusted_devices
from authpi.token.domain.mfa_commands import (
    DeviceCommand,
    RevokeAllDevices,
    RevokeDevice,
    TrustDevice,
)
from authpi.token.domain.trusted_devices import stream_of
from authpi.token.handlers.user_lookup import Owner
from authpi.token.queries.mfa import DeviceRow, MfaQueries

DEFAULT_TTL_S = 30 * 24 * 3600
_NO_DEVICE = sha256_hex("authpi: no such trusted device")


class NewDevice(msgspec.Struct, frozen=True, kw_only=True):
    fingerprint: str | None = None
    name: str | None = None
    user_agent: str | None = None
    expires_at: int | None = None


def device_ttl_s(settings: Mapping[str, Any]) -> int:
    """settings.security.trusted_device_ttl (validated by the directory); the default otherwise."""
    security = settings.get("security")
    ttl = security.get("trusted_device_ttl") if isinstance(security, Mapping) else None
    return ttl if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > 0 else DEFAULT_TTL_S


def fingerprint_of(user_agent: str | None) -> str:
    """A coarse, public label of a browser (not a secret, not an identifier)."""
    return sha256_hex(user_agent or "")[:32]


def split_device_cookie(cookie: str | None) -> tuple[str, str] | None:
    if not cookie:
        return None
    device_id, dot, secret = cookie.partition(".")
    if not dot or not device_id.startswith("dev_") or not secret:
        return None
    return device_id, secret


class TrustedDevices:
    def __init__(
        self,
        *,
        store: EventStore,
        pool: AsyncConnectionPool,
        queries: MfaQueries,
        clock: Clock,
        ids: Ids,
    ) -> None:
        self.store = store
        self.pool = pool
        self.queries = queries
        self.clock = clock
        self.ids = ids

    async def list(self, owner: Owner) -> tuple[list[DeviceRow], str]:
        """The devices trusted now, and the ETag of the user's devices as a whole."""
        async with self.pool.connection() as conn:
            rows = await self.queries.devices(conn, owner.user.id, self.clock.now_ms())
            history = await self.store.load(conn, stream_of(owner.user.id))
        return rows, fold(trusted_devices, history).etag

    async def get(self, owner: Owner, device_id: str) -> DeviceRow:
        async with self.pool.connection() as conn:
            row = await self.queries.device(conn, device_id)
        if row is None or row.user_id != owner.user.id:
            raise NotFound("no such trusted device", reason="device.not_found")
        return row

    async def create(self, owner: Owner, new: NewDevice, meta: Meta) -> DeviceRow:
        now = self.clock.now_ms()
        expires_at = new.expires_at or now + device_ttl_s(owner.issuer.settings) * 1000
        device_id = self.ids.new("dev")
        cmd = TrustDevice(
            device_id=device_id, issuer_id=owner.issuer.id, user_id=owner.user.id,
            fingerprint=new.fingerprint or fingerprint_of(new.user_agent), name=new.name,
            user_agent=new.user_agent, expires_at=expires_at, now=now,
        )  # fmt: skip
        await self._execute(owner.user.id, cmd, meta)
        return await self.get(owner, device_id)

    async def trust_browser(
        self, owner: Owner, user_agent: str | None, meta: Meta
    ) -> tuple[str, int]:
        """Trust the browser that just passed a second factor: its cookie value and lifetime
        in seconds."""
        now = self.clock.now_ms()
        ttl_s = device_ttl_s(owner.issuer.settings)
        device_id, secret = self.ids.new("dev"), self.ids.secret(32)
        cmd = TrustDevice(
            device_id=device_id, issuer_id=owner.issuer.id, user_id=owner.user.id,
            fingerprint=fingerprint_of(user_agent), name=_browser_name(user_agent),
            user_agent=user_agent, token_sha256=sha256_hex(secret),
            expires_at=now + ttl_s * 1000, now=now,
        )  # fmt: skip
        await self._execute(owner.user.id, cmd, meta)
        return f"{device_id}.{secret}", ttl_s

    async def recognised(self, issuer_id: str, user_id: str, cookie: str | None) -> str | None:
        """The id of the device `cookie` names when it is trusted now for this user and issuer;
        None otherwise (the same digest work either way)."""
        parsed = split_device_cookie(cookie)
        if parsed is None:
            return None
        device_id, secret = parsed
        async with self.pool.connection() as conn:
            row = await self.queries.device(conn, device_id)
        stored = row.token_sha256 if row is not None and row.token_sha256 else _NO_DEVICE
        matches = hmac.compare_digest(stored, sha256_hex(secret))
        if (
            row is None
            or not matches
            or row.user_id != user_id
            or row.issuer_id != issuer_id
            or row.expires_at <= self.clock.now_ms()
        ):
            return None
        return row.id

    async def revoke(self, owner: Owner, device_id: str, if_match: str | None, meta: Meta) -> None:
        await self.get(owner, device_id)
        cmd = RevokeDevice(
            device_id=device_id, issuer_id=owner.issuer.id, user_id=owner.user.id,
            if_match=if_match, now=self.clock.now_ms(),
        )  # fmt: skip
        await self._execute(owner.user.id, cmd, meta)

    async def revoke_all(self, owner: Owner, if_match: str | None, meta: Meta) -> tuple[int, str]:
        """How many devices were revoked, and the ETag of the user's devices after it."""
        cmd = RevokeAllDevices(
            issuer_id=owner.issuer.id, user_id=owner.user.id, if_match=if_match,
            now=self.clock.now_ms(),
        )  # fmt: skip
        outcome = await self.store.execute(stream_of(owner.user.id), trusted_devices, cmd, meta)
        revoked = sum(
            len(e.event.device_ids)
            for e in outcome.events
            if isinstance(e.event, UserDeviceRevoked)
        )
        return revoked, outcome.state.etag

    async def _execute(self, user_id: str, cmd: DeviceCommand, meta: Meta) -> None:
        await self.store.execute(stream_of(user_id), trusted_devices, cmd, meta)


def _browser_name(user_agent: str | None) -> str | None:
    """A person-readable name of the browser, from its user agent (best effort)."""
    if not user_agent:
        return None
    for name in ("Edg", "Firefox", "Chrome", "Safari"):
        if name in user_agent:
            return {"Edg": "Edge"}.get(name, name)
    return user_agent[:64]
