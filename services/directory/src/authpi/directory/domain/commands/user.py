"""Commands of the User aggregate (internal; never published). PII arrives sealed by the
handler; times and ids are decided by the handler."""

from __future__ import annotations

from typing import Any

import msgspec


class SsoLink(msgspec.Struct, frozen=True, kw_only=True):
    """An identity of an organization's upstream IdP (its `iss` and `sub`)."""

    org_id: str
    protocol: str = "oidc"
    external_issuer: str
    external_subject: str

    @property
    def key(self) -> str:
        return "\n".join((self.org_id, self.protocol, self.external_issuer, self.external_subject))


class LinkSsoIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """An SSO sign-in of an existing user: link the identity unless it is linked already."""

    user_id: str
    issuer_id: str
    link: SsoLink
    now: int


class CreateUser(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    issuer_id: str
    username_hash: str
    pii: str
    now: int
    method: str = "api"
    region: str = "default"
    store_id: str = "default"
    username_type: str = "email"
    scopes: list[str] = []
    metadata: dict[str, Any] = {}
    # True: the issuer holds signups for approval; the user starts `pending_approval`.
    held: bool = False
    # Created just in time by an organization's SSO: the identity linked from the start.
    sso: SsoLink | None = None


class UpdateUser(msgspec.Struct, frozen=True, kw_only=True):
    """A PATCH, prepared by the handler from the version it read (`based_on`, the ETag it saw):
    a field left None is unchanged; `pii` is the complete re-sealed snapshot."""

    user_id: str
    issuer_id: str
    now: int
    based_on: str
    pii: str | None = None
    pii_changed: list[str] = []
    username_hash: str | None = None
    scopes: list[str] | None = None
    metadata: dict[str, Any] | None = None
    status: str | None = None
    status_reason: str | None = None
    status_by: str | None = None
    if_match: str | None = None


class DeleteUser(msgspec.Struct, frozen=True, kw_only=True):
    user_id: str
    issuer_id: str
    now: int
    if_match: str | None = None


class DecideApproval(msgspec.Struct, frozen=True, kw_only=True):
    """An administrator's decision on a held signup (core-api.md 3.10): `approve` or `reject`."""

    user_id: str
    issuer_id: str
    decision: str
    now: int
    reason: str | None = None
    decided_by: str | None = None
    if_match: str | None = None
