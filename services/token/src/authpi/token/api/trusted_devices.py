"""The Core API's trusted-device routes (core-api.md 3.9 sub-resources; contract 4.24,
`TrustedDevice`, `UserTrustedDevicesCreateResponse`, `UserTrustedDevicesRevokeAllResponse` in
5.8): list the devices trusted now (one page, contract 3.4), trust one (a record: only a device
trusted in the portal carries the cookie that skips a challenge), revoke one, revoke all. Scopes
`issuers.users.trusted-devices:read|write|delete`. The list and revoke-all carry the ETag of the
user's devices as a whole, which revoke-all's `If-Match` is compared with; a device's own ETag is
its `trusted_at`."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Response, Router, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from authpi.errors import FieldProblem, Unprocessable
from authpi.token.handlers.trusted_devices import NewDevice, TrustedDevices
from authpi.token.handlers.user_lookup import UserLookup
from authpi.token.queries.mfa import DeviceRow
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal
from authpi.web.text import check_storable

USER = "/v1/accounts/{account_id:str}/issuers/{issuer_id:str}/users/{user_id:str}"
DEVICES = USER + "/trusted-devices"
TAGS = ["Trusted devices"]
READ = [require_scope("issuers.users.trusted-devices:read")]
WRITE = [require_scope("issuers.users.trusted-devices:write")]
DELETE = [require_scope("issuers.users.trusted-devices:delete")]
MAX_TTL_MS = 366 * 24 * 3600 * 1000

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Agent = Annotated[str, msgspec.Meta(max_length=512)]


class TrustedDeviceCreate(msgspec.Struct, frozen=True, kw_only=True):
    fingerprint: Text | None = None
    name: Text | None = None
    user_agent: Agent | None = None
    expires_at: Annotated[int, msgspec.Meta(ge=0, le=2**53)] | None = None


class TrustedDevice(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    fingerprint: str
    name: str | None
    user_agent: str | None
    trusted_at: int
    expires_at: int
    last_used_at: int | None

    @classmethod
    def of(cls, row: DeviceRow) -> TrustedDevice:
        return cls(
            id=row.id, fingerprint=row.fingerprint, name=row.name, user_agent=row.user_agent,
            trusted_at=row.trusted_at, expires_at=row.expires_at, last_used_at=row.last_used_at,
        )  # fmt: skip


class UserTrustedDevicesCreateResponse(msgspec.Struct, frozen=True, kw_only=True):
    device_id: str
    expires_at: int


class UserTrustedDevicesRevokeAllResponse(msgspec.Struct, frozen=True, kw_only=True):
    revoked_count: int


@get(DEVICES, operation_id="listUserTrustedDevices", summary="List Trusted Devices", tags=TAGS,
     guards=READ)  # fmt: skip
async def list_devices(
    account_id: FromPath[str], issuer_id: FromPath[str], user_id: FromPath[str],
    lookup: NamedDependency[UserLookup], devices: NamedDependency[TrustedDevices],
) -> Response[Page[TrustedDevice]]:  # fmt: skip
    rows, etag = await devices.list(await lookup.owner(account_id, issuer_id, user_id))
    page = Page(data=[TrustedDevice.of(r) for r in rows], has_more=False, next_cursor=None)
    return Response(page, headers={"ETag": etag})


@post(DEVICES, operation_id="createUserTrustedDevice", summary="Trust a Device", tags=TAGS,
      guards=WRITE, status_code=201)  # fmt: skip
async def create_device(
    account_id: FromPath[str], issuer_id: FromPath[str], user_id: FromPath[str],
    principal: InjectedPrincipal, lookup: NamedDependency[UserLookup],
    devices: NamedDependency[TrustedDevices],
    data: JSONBody[TrustedDeviceCreate] = TrustedDeviceCreate(),
) -> Response[One[UserTrustedDevicesCreateResponse]]:  # fmt: skip
    check_storable(data)
    now = devices.clock.now_ms()
    if data.expires_at is not None and not now < data.expires_at <= now + MAX_TTL_MS:
        message = "expires_at must be in the future, at most a year ahead"
        problem = FieldProblem(field="expires_at", code="invalid_value", message=message)
        raise Unprocessable(message, reason="device.expires_at", fields=[problem])
    owner = await lookup.owner(account_id, issuer_id, user_id)
    new = NewDevice(
        fingerprint=data.fingerprint, name=data.name, user_agent=data.user_agent,
        expires_at=data.expires_at,
    )  # fmt: skip
    row = await devices.create(owner, new, owner.meta(principal.actor()))
    out = UserTrustedDevicesCreateResponse(device_id=row.id, expires_at=row.expires_at)
    return one(out, etag=etag_of(row.trusted_at, None), status=201)


@post(DEVICES + "/revoke-all", operation_id="revokeAllUserTrustedDevices",
      summary="Revoke All Trusted Devices", tags=TAGS,
      guards=WRITE, status_code=200)  # fmt: skip
async def revoke_all_devices(
    account_id: FromPath[str], issuer_id: FromPath[str], user_id: FromPath[str],
    principal: InjectedPrincipal, lookup: NamedDependency[UserLookup],
    devices: NamedDependency[TrustedDevices], if_match: IfMatch = None,
) -> Response[One[UserTrustedDevicesRevokeAllResponse]]:  # fmt: skip
    owner = await lookup.owner(account_id, issuer_id, user_id)
    count, etag = await devices.revoke_all(owner, if_match, owner.meta(principal.actor()))
    return one(UserTrustedDevicesRevokeAllResponse(revoked_count=count), etag=etag)


@delete(DEVICES + "/{device_id:str}", operation_id="deleteUserTrustedDevice",
        summary="Revoke Trusted Device", tags=TAGS,
        guards=DELETE, status_code=204)  # fmt: skip
async def delete_device(
    account_id: FromPath[str], issuer_id: FromPath[str], user_id: FromPath[str],
    device_id: FromPath[str], principal: InjectedPrincipal,
    lookup: NamedDependency[UserLookup], devices: NamedDependency[TrustedDevices],
    if_match: IfMatch = None,
) -> Response[None]:  # fmt: skip
    owner = await lookup.owner(account_id, issuer_id, user_id)
    await devices.revoke(owner, device_id, if_match, owner.meta(principal.actor()))
    return no_content()


def trusted_devices_router(lookup: UserLookup, devices: TrustedDevices) -> Router:
    return Router(
        "/",
        route_handlers=[list_devices, create_device, revoke_all_devices, delete_device],
        dependencies={"lookup": provide(lookup), "devices": provide(devices)},
    )
