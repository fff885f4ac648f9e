"""A user's trusted devices (core-api.md 3.9 sub-resources): one `devices:<user_id>` stream per
user, so that revoking all of them is one append that names exactly the devices it revoked. A
device trusted in the portal is known by the digest of its cookie's secret; one trusted through
the Core API has none (it is a record an administrator keeps, never a way past the challenge).
At most `MAX_DEVICES` unexpired devices: trusting one more revokes the oldest."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.mfa import UserDeviceRevoked, UserDeviceTrusted
from authpi.errors import Conflict, NotFound
from authpi.token.domain.mfa_commands import (
    DeviceCommand,
    RevokeAllDevices,
    RevokeDevice,
    TrustDevice,
)
from authpi.web.etag import check_if_match, etag_of, strictly_after

MAX_DEVICES = 50


def stream_of(user_id: str) -> str:
    return f"devices:{user_id}"


class Device(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    expires_at: int
    trusted_at: int

    @property
    def etag(self) -> str:
        return etag_of(self.trusted_at, None)


class Devices(msgspec.Struct, frozen=True, kw_only=True):
    """The user's devices that are not revoked (expired ones included, until revoked)."""

    devices: dict[str, Device] = {}
    created_at: int | None = None  # the stream's first event: the collection's ETag
    updated_at: int | None = None

    @property
    def etag(self) -> str:
        return etag_of(self.created_at or 0, self.updated_at)

    def changed_at(self, now: int) -> int:
        return strictly_after(now, self.updated_at or self.created_at or 0)


INITIAL = Devices()


def decide(cmd: DeviceCommand, state: Devices) -> list[Event]:
    match cmd:
        case TrustDevice():
            return _trusted(cmd, state)
        case RevokeDevice():
            device = state.devices.get(cmd.device_id)
            if device is None:
                raise NotFound("no such trusted device", reason="device.not_found")
            check_if_match(cmd.if_match, device.etag)
            return [_revoked(cmd.user_id, cmd.issuer_id, [device.id], state, cmd.now, True)]
        case RevokeAllDevices():
            check_if_match(cmd.if_match, state.etag)
            if not state.devices:
                return []
            ids = sorted(state.devices)
            return [_revoked(cmd.user_id, cmd.issuer_id, ids, state, cmd.now, False)]


def _trusted(cmd: TrustDevice, state: Devices) -> list[Event]:
    if cmd.device_id in state.devices:
        raise Conflict("the device is already trusted", reason="device.exists")
    events: list[Event] = []
    live = [d for d in state.devices.values() if d.expires_at > cmd.now]
    if len(live) >= MAX_DEVICES:
        oldest = min(live, key=lambda d: (d.trusted_at, d.id))
        events.append(_revoked(cmd.user_id, cmd.issuer_id, [oldest.id], state, cmd.now, True))
    events.append(
        UserDeviceTrusted(
            issuer_id=cmd.issuer_id, user_id=cmd.user_id, device_id=cmd.device_id,
            fingerprint=cmd.fingerprint, name=cmd.name, user_agent=cmd.user_agent,
            token_sha256=cmd.token_sha256, expires_at=cmd.expires_at,
            trusted_at=state.changed_at(cmd.now),
        )
    )  # fmt: skip
    return events


def _revoked(
    user_id: str, issuer_id: str, ids: list[str], state: Devices, now: int, one: bool
) -> UserDeviceRevoked:
    return UserDeviceRevoked(
        issuer_id=issuer_id, user_id=user_id, device_id=ids[0] if one else None,
        device_ids=ids, revoked_count=len(ids), revoked_at=state.changed_at(now),
    )  # fmt: skip


def evolve(state: Devices, event: Event) -> Devices:
    match event:
        case UserDeviceTrusted():
            device = Device(id=event.device_id, expires_at=event.expires_at,
                            trusted_at=event.trusted_at)  # fmt: skip
            return msgspec.structs.replace(
                state,
                devices={**state.devices, device.id: device},
                created_at=state.created_at or event.trusted_at,
                updated_at=event.trusted_at if state.created_at else None,
            )
        case UserDeviceRevoked():
            left = {k: v for k, v in state.devices.items() if k not in event.device_ids}
            return msgspec.structs.replace(state, devices=left, updated_at=event.revoked_at)
        case _:
            return state
