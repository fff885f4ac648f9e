"""An account's custom domains (core-api.md 3.3): added unverified, verified when the host's DNS
publishes the account's TXT challenge (the handler looks, this module decides), assigned to one
issuer at a time, removed (after their assignment). They live in the account's stream; account.py
calls in here and folds the result. At most 20 per account; a host is unique across accounts (the
handler reserves it in the same transaction), but an unverified claim lapses after
`CLAIM_TTL_MS`: another account may then take the host over."""

from __future__ import annotations

import base64
import hashlib

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    AccountDomainAdded,
    AccountDomainAssigned,
    AccountDomainRemoved,
    AccountDomainUnassigned,
    DomainSnapshot,
)
from authpi.directory.domain.commands.account import (
    AddDomain,
    AssignDomain,
    DomainEdit,
    ExpireDomainClaim,
    ReleaseIssuerDomains,
    RemoveDomain,
    UnassignDomain,
    VerifyDomain,
)
from authpi.errors import Conflict, FieldProblem, NotFound, Unprocessable
from authpi.web.etag import check_if_match

MAX_DOMAINS = 20  # core-api.md 3.3; the 21st is a 422
# An unverified claim holds the host this long; then another account may take it over.
CLAIM_TTL_MS = 7 * 24 * 3600 * 1000
CHALLENGE_LABEL = "_authpi-challenge"
Domains = tuple[DomainSnapshot, ...]


DomainCommand = (
    AddDomain | RemoveDomain | AssignDomain | UnassignDomain | ReleaseIssuerDomains
    | ExpireDomainClaim
)  # fmt: skip


def challenge_name(host: str) -> str:
    """Where the account publishes its TXT challenge for `host`."""
    return f"{CHALLENGE_LABEL}.{host}"


def challenge_token(account_id: str, host: str) -> str:
    """The TXT value proving that whoever controls `host`'s DNS wants it in `account_id`. It
    is public by design, like the key authorization of ACME's dns-01 (RFC 8555 8.4): only the
    host's DNS operator can publish it, and it names one account and one host, so a record
    published for one account never verifies the host in another."""
    digest = hashlib.sha256(f"authpi-domain-challenge\0{account_id}\0{host}".encode()).digest()
    return "authpi-verify=" + base64.b32encode(digest).decode().rstrip("=").lower()


def claim_expired(domain: DomainSnapshot, now: int) -> bool:
    return not domain.verified and domain.added_at + CLAIM_TTL_MS <= now


def find(domains: Domains, host: str) -> DomainSnapshot:
    for domain in domains:
        if domain.host == host:
            return domain
    raise NotFound("no such domain in this account", reason="domain.not_found")


def decide(
    cmd: DomainCommand, account_id: str, domains: Domains, etag: str, at: int
) -> list[Event]:
    """Events for a domain command on an account whose ETag is `etag`; `at` is the time of the
    change (strictly after the account's last one)."""
    match cmd:
        case AddDomain():
            return _added(cmd, account_id, domains, at)
        case ReleaseIssuerDomains():
            return [
                AccountDomainUnassigned(account_id=account_id, host=d.host,
                                        issuer_id=cmd.issuer_id, unassigned_at=at)
                for d in domains if d.assigned_issuer_id == cmd.issuer_id
            ]  # fmt: skip
        case ExpireDomainClaim():
            return _expired(cmd, account_id, domains, at)
        case RemoveDomain() | UnassignDomain() | AssignDomain():
            pass  # commands on one existing domain, below
    domain = find(domains, cmd.host)
    check_if_match(cmd.if_match, etag)
    match cmd:
        case RemoveDomain():
            return [*_unassigned(account_id, domain, at),
                    AccountDomainRemoved(account_id=account_id, host=domain.host,
                                         verified=domain.verified, removed_at=at)]  # fmt: skip
        case UnassignDomain():
            return _unassigned(account_id, domain, at)
        case AssignDomain():
            return _assigned(cmd, account_id, domain, at)
    raise AssertionError(f"unhandled command {cmd!r}")


def _added(cmd: AddDomain, account_id: str, domains: Domains, at: int) -> list[Event]:
    if any(d.host == cmd.host for d in domains):
        raise Conflict("the account already has this domain", reason="domain.exists")
    if len(domains) >= MAX_DOMAINS:
        problem = FieldProblem(
            field="host", code="too_many",
            message=f"an account has at most {MAX_DOMAINS} domains; remove one first",
        )  # fmt: skip
        raise Unprocessable(problem.message, reason="domain.limit", fields=[problem])
    return [AccountDomainAdded(account_id=account_id, host=cmd.host, added_at=at)]


def _expired(cmd: ExpireDomainClaim, account_id: str, domains: Domains, at: int) -> list[Event]:
    domain = find(domains, cmd.host)
    if not claim_expired(domain, cmd.now):
        raise Conflict("the domain belongs to another account", reason="domain.taken")
    return [AccountDomainRemoved(account_id=account_id, host=domain.host, verified=False,
                                 removed_at=at)]  # fmt: skip


def _unassigned(account_id: str, domain: DomainSnapshot, at: int) -> list[Event]:
    if domain.assigned_issuer_id is None:
        return []
    unassigned = AccountDomainUnassigned(
        account_id=account_id, host=domain.host, issuer_id=domain.assigned_issuer_id,
        unassigned_at=at,
    )  # fmt: skip
    return [unassigned]


def _assigned(cmd: AssignDomain, account_id: str, domain: DomainSnapshot, at: int) -> list[Event]:
    """Only a verified domain serves an issuer (core-api.md 7 #24). Moving it to another issuer
    unassigns it from the first one."""
    if domain.assigned_issuer_id == cmd.issuer_id:
        return []
    if not domain.verified:
        raise Conflict(
            "the domain must be verified before it is assigned", reason="domain.unverified"
        )
    assigned = AccountDomainAssigned(
        account_id=account_id, host=domain.host, issuer_id=cmd.issuer_id, assigned_at=at
    )
    return [*_unassigned(account_id, domain, at), assigned]


def verified(cmd: VerifyDomain, domains: Domains, etag: str) -> Domains | None:
    """The domains after a verification, or None when it changes nothing (already verified)."""
    domain = find(domains, cmd.host)
    check_if_match(cmd.if_match, etag)
    if domain.verified:
        return None
    if claim_expired(domain, cmd.now):
        raise Conflict(
            f"the unverified claim on {cmd.host} has expired: remove the domain and add it again",
            reason="domain.claim_expired",
        )
    token = challenge_token(cmd.account_id, cmd.host)
    if token not in cmd.published:
        raise Conflict(
            f"{challenge_name(cmd.host)} does not publish this account's TXT challenge yet:"
            f" add a TXT record with the value {token}, then verify again",
            reason="domain.challenge_missing",
        )
    return _replace(domains, msgspec.structs.replace(domain, verified=True))


def edited(edits: list[DomainEdit], domains: Domains) -> Domains:
    """The domains after PATCH edits of the primary flag: one primary at most, known hosts only
    (422 otherwise). Setting a primary clears the flag on every other domain."""
    hosts = [e.host for e in edits]
    for i, edit in enumerate(edits):
        if not any(d.host == edit.host for d in domains):
            raise _bad(f"domains.{i}.host", "is not a domain of this account")
        if hosts.index(edit.host) != i:
            raise _bad(f"domains.{i}.host", "appears twice")
    primaries = [e.host for e in edits if e.primary]
    if len(primaries) > 1:
        raise _bad("domains", "may mark one domain primary at most")
    flags = {e.host: e.primary for e in edits}
    out: list[DomainSnapshot] = []
    for d in domains:
        primary = flags.get(d.host, d.primary and not primaries)
        out.append(msgspec.structs.replace(d, primary=primary))
    return tuple(out)


def _bad(field: str, text: str) -> Unprocessable:
    problem = FieldProblem(field=field, code="invalid_value", message=f"{field} {text}")
    return Unprocessable(problem.message, reason="account.domains", fields=[problem])


def _replace(domains: Domains, new: DomainSnapshot) -> Domains:
    return tuple(new if d.host == new.host else d for d in domains)


def evolve(domains: Domains, event: Event) -> Domains:
    match event:
        case AccountDomainAdded():
            return (*domains, DomainSnapshot(host=event.host, verified=event.verified,
                                             added_at=event.added_at))  # fmt: skip
        case AccountDomainRemoved():
            return tuple(d for d in domains if d.host != event.host)
        case AccountDomainAssigned():
            return tuple(
                msgspec.structs.replace(d, assigned_issuer_id=event.issuer_id,
                                        assigned_at=event.assigned_at)
                if d.host == event.host else d
                for d in domains
            )  # fmt: skip
        case AccountDomainUnassigned():
            return tuple(
                msgspec.structs.replace(d, assigned_issuer_id=None, assigned_at=None)
                if d.host == event.host else d
                for d in domains
            )  # fmt: skip
        case _:
            return domains


def at_of(event: Event) -> int | None:
    """When a domain event changed the account (its new `updated_at`)."""
    match event:
        case AccountDomainAdded():
            return event.added_at
        case AccountDomainRemoved():
            return event.removed_at
        case AccountDomainAssigned():
            return event.assigned_at
        case AccountDomainUnassigned():
            return event.unassigned_at
        case _:
            return None
