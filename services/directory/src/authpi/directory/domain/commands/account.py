"""Commands of the Account aggregate and of its custom domains (internal; never published).
Times and ids are decided by the handler; PATCH fields left out are UNSET."""

from __future__ import annotations

from typing import Any

import msgspec


class CreateAccount(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    org_id: str
    name: str
    owner_user_id: str | None
    now: int
    metadata: dict[str, Any] = {}


class UpdateAccount(msgspec.Struct, frozen=True, kw_only=True):
    """PATCH /v1/accounts/{id}: UNSET keeps a field; `metadata` follows the merge rule (2.6).
    The owner arrives already checked against the account's users by the handler."""

    account_id: str
    now: int
    name: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType | None = msgspec.UNSET
    logo_url: str | msgspec.UnsetType | None = msgspec.UNSET
    owner_user_id: str | msgspec.UnsetType = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    domains: list[DomainEdit] | msgspec.UnsetType = msgspec.UNSET
    if_match: str | None = None


class AddDomain(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    host: str  # already normalised by the API (lower-case FQDN)
    now: int


class RemoveDomain(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    host: str
    now: int
    if_match: str | None = None


class AssignDomain(msgspec.Struct, frozen=True, kw_only=True):
    """The handler has checked that `issuer_id` is a live issuer of the account."""

    account_id: str
    host: str
    issuer_id: str
    now: int
    if_match: str | None = None


class UnassignDomain(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    host: str
    now: int
    if_match: str | None = None


class VerifyDomain(msgspec.Struct, frozen=True, kw_only=True):
    """`published`: the TXT values the handler's DNS lookup of `challenge_name(host)` saw before
    the transaction began."""

    account_id: str
    host: str
    now: int
    published: frozenset[str] = frozenset()
    if_match: str | None = None


class ExpireDomainClaim(msgspec.Struct, frozen=True, kw_only=True):
    """Another account wants `host`: this account's claim on it ends if it is unverified and
    older than `CLAIM_TTL_MS`, and stands (409) otherwise."""

    account_id: str
    host: str
    now: int


class ReleaseIssuerDomains(msgspec.Struct, frozen=True, kw_only=True):
    """An issuer is being deleted: the domains assigned to it are unassigned in the same
    transaction."""

    account_id: str
    issuer_id: str
    now: int


class DomainEdit(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of `domains` in PATCH /v1/accounts/{id}: only the primary flag is editable."""

    host: str
    primary: bool
