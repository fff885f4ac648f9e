"""The folded state of one organization stream: the organization, its memberships and groups."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.directory.domain.commands.organization import OrgRef, Profile
from authpi.errors import NotFound
from authpi.web.etag import etag_of, strictly_after


class Absent(msgspec.Struct, frozen=True):
    pass


class Member(msgspec.Struct, frozen=True, kw_only=True):
    member_id: str
    member_type: str
    status: str = "active"
    status_reason: str | None = None
    status_by: str | None = None
    scopes: list[str] = []
    groups: list[str] = []
    user_title: str | None = None
    metadata: dict[str, Any] = {}
    joined_at: int
    updated_at: int | None = None

    @property
    def etag(self) -> str:
        return etag_of(self.joined_at, self.updated_at)


class Group(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    description: str | None = None
    scopes: list[str] = []
    metadata: dict[str, Any] = {}
    created_at: int
    updated_at: int | None = None

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)


class Invitation(msgspec.Struct, frozen=True, kw_only=True):
    """`status` as recorded: pending, accepted, declined or revoked; `expired` is read from
    `expires_at` (core-api.md 3.15: evaluated lazily). The invited address is known only by
    `email_hash` (its personal data is sealed in the events, DESIGN.md 7)."""

    id: str
    email_hash: str
    status: str = "pending"
    user_id_invited: str | None = None
    user_title: str | None = None
    scopes: list[str] = []
    metadata: dict[str, Any] = {}
    token_sha256: str
    created_at: int
    expires_at: int
    updated_at: int | None = None
    resent_at: int | None = None  # the last resend, which the next one waits a minute after

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)

    def expired(self, now: int) -> bool:
        return now >= self.expires_at

    def open(self, now: int) -> bool:
        """Pending and not expired: it may still be answered, edited or resent."""
        return self.status == "pending" and not self.expired(now)

    def changed_at(self, now: int) -> int:
        return strictly_after(now, self.updated_at or self.created_at)


class SsoDomain(msgspec.Struct, frozen=True, kw_only=True):
    """An email domain the organization claims for SSO (core-api.md 3.16)."""

    domain: str
    created_at: int
    verified_at: int | None = None

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


class Org(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    issuer_id: str
    profile: Profile
    status: str = "active"  # active | suspended | deleting
    status_at: int | None = None
    created_at: int
    updated_at: int | None = None
    members: dict[str, Member] = {}
    groups: dict[str, Group] = {}
    invitations: dict[str, Invitation] = {}
    sso_domains: dict[str, SsoDomain] = {}
    sso_secret_sha256: str | None = None

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)

    def changed_at(self, now: int) -> int:
        """When a change decided at `now` happens: strictly after the last one (ETags differ)."""
        return strictly_after(now, self.updated_at or self.created_at)

    def owned_by(self, ref: OrgRef) -> bool:
        return self.account_id == ref.account_id and self.issuer_id == ref.issuer_id


class Gone(msgspec.Struct, frozen=True):
    """Deleted: every request for it is a 404, its id is never reused."""

    id: str


Organization = Absent | Org | Gone


def live_org(state: Organization, ref: OrgRef) -> Org:
    """The organization a command may act on: present, in the caller's issuer, not deleting."""
    if isinstance(state, Org) and state.owned_by(ref) and state.status != "deleting":
        return state
    raise NotFound("no such organization", reason="organization.not_found")
