"""Invitations of an organization (core-api.md 3.15), decided against the organization's state:
they live in its stream, so that the organization's invitation setting, its suspension (which
freezes them), its memberships and `max_members` are checked against one consistent state, and
an acceptance commits the membership with it.

An invitation is answered through its link: the token's digest must be the current one (a
resend mints a new link), the invitation pending and unexpired, and an acceptance must come
from the invited address, into an organization that still takes invitations
(`invitation_enabled`; a decline is recorded either way).

The decider never sees the invitation's personal data: the handler seals the address, inviter
and message under the invitation's data key (`pii`), and addresses are compared by their hash
(`email_hash`, the username hash of the address in the issuer)."""

from __future__ import annotations

import hmac

import msgspec
from msgspec import UNSET

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    OrganizationDeleted,
    OrganizationInvitationAccepted,
    OrganizationInvitationCreated,
    OrganizationInvitationDeclined,
    OrganizationInvitationDeleted,
    OrganizationInvitationResent,
    OrganizationInvitationUpdated,
)
from authpi.directory.domain import org_members
from authpi.directory.domain.commands.organization import (
    AddMember,
    AnswerInvitation,
    CreateInvitation,
    OrgRef,
    ResendInvitation,
    RevokeInvitation,
    UpdateInvitation,
)
from authpi.directory.domain.organization_state import Invitation, Org, Organization, live_org
from authpi.errors import Conflict, FieldProblem, NotFound, RateLimited, Unprocessable
from authpi.web.etag import check_if_match
from authpi.web.metadata import merge_metadata

_FIELDS = ("user_title", "scopes", "metadata")
RESEND_INTERVAL_MS = 60_000

InvitationCommand = (
    CreateInvitation | UpdateInvitation | ResendInvitation | RevokeInvitation | AnswerInvitation
)


def decide(cmd: InvitationCommand, state: Organization) -> list[Event]:
    match cmd:
        case CreateInvitation():
            return _create(cmd, _unfrozen(live_org(state, cmd.ref)))
        case UpdateInvitation():
            org = _unfrozen(live_org(state, cmd.ref))
            return _update(cmd, org, _open(_invitation(org, cmd.invitation_id), cmd.now))
        case ResendInvitation():
            org = _unfrozen(live_org(state, cmd.ref))
            inv = _open(_invitation(org, cmd.invitation_id), cmd.now)
            check_if_match(cmd.if_match, inv.etag)
            _check_resend_interval(inv, cmd.now)
            return [OrganizationInvitationResent(
                id=inv.id, org_id=org.id, issuer_id=org.issuer_id,
                token_sha256=cmd.token_sha256, sent_at=inv.changed_at(cmd.now))]  # fmt: skip
        case RevokeInvitation():
            org = _unfrozen(live_org(state, cmd.ref))
            inv = _invitation(org, cmd.invitation_id)
            check_if_match(cmd.if_match, inv.etag)
            if inv.status != "pending":
                raise Conflict(f"the invitation is {inv.status}", reason="invitation.not_pending")
            return [OrganizationInvitationDeleted(
                id=inv.id, org_id=org.id, issuer_id=org.issuer_id,
                revoked_at=inv.changed_at(cmd.now))]  # fmt: skip
        case AnswerInvitation():
            return _answer(cmd, state)
    raise AssertionError(f"unhandled command {cmd!r}")


def _unfrozen(org: Org) -> Org:
    if org.status != "active":
        raise Conflict(
            "the organization is suspended: its invitations are frozen",
            reason="organization.suspended",
        )
    return org


def _check_resend_interval(inv: Invitation, now: int) -> None:
    """At most one resend a minute per invitation (core-api.md 7 #13): each one mails the
    invited address, which a loop of resends would otherwise flood."""
    if inv.resent_at is None or now >= inv.resent_at + RESEND_INTERVAL_MS:
        return
    wait = -(-(inv.resent_at + RESEND_INTERVAL_MS - now) // 1000)
    raise RateLimited(
        f"the invitation was resent less than a minute ago; retry in {wait} s",
        reason="invitation.resend_too_soon",
        retry_after=wait,
    )


def _invitation(org: Org, invitation_id: str) -> Invitation:
    inv = org.invitations.get(invitation_id)
    if inv is None:
        raise NotFound("no such invitation in this organization", reason="invitation.not_found")
    return inv


def _open(inv: Invitation, now: int) -> Invitation:
    if inv.status != "pending":
        raise Conflict(f"the invitation is {inv.status}", reason="invitation.not_pending")
    if inv.expired(now):
        raise Conflict("the invitation has expired", reason="invitation.expired")
    return inv


def _create(cmd: CreateInvitation, org: Org) -> list[Event]:
    if not org.profile.invitation_enabled:
        raise Conflict("the organization does not accept invitations", reason="invitation.disabled")
    if cmd.invitation_id in org.invitations:
        raise Conflict("the invitation already exists", reason="invitation.exists")
    if any(i.email_hash == cmd.email_hash and i.open(cmd.now) for i in org.invitations.values()):
        raise Conflict(
            "a pending invitation for this address exists", reason="invitation.pending_exists"
        )
    member = org.members.get(cmd.user_id_invited or "")
    if member is not None and member.status == "active":
        raise Conflict("the address belongs to a member", reason="invitation.already_member")
    _check_scopes(org, cmd.scopes)
    return [OrganizationInvitationCreated(
        id=cmd.invitation_id, org_id=org.id, issuer_id=org.issuer_id, email_hash=cmd.email_hash,
        pii=cmd.pii, user_id_invited=cmd.user_id_invited, user_title=cmd.user_title,
        scopes=list(cmd.scopes), metadata=cmd.metadata, token_sha256=cmd.token_sha256,
        expires_at=cmd.expires_at, created_at=cmd.now)]  # fmt: skip


def _update(cmd: UpdateInvitation, org: Org, inv: Invitation) -> list[Event]:
    check_if_match(cmd.if_match, inv.etag)
    after = msgspec.structs.replace(
        inv,
        user_title=inv.user_title if cmd.user_title is UNSET else cmd.user_title,
        scopes=inv.scopes if cmd.scopes is UNSET else cmd.scopes,
        metadata=merge_metadata(inv.metadata, cmd.metadata),
    )
    changed = [f for f in _FIELDS if getattr(after, f) != getattr(inv, f)]
    if cmd.pii is not None:  # a changed message, sealed by the handler
        changed.append("message")
    if not changed:
        return []
    _check_scopes(org, after.scopes)
    return [OrganizationInvitationUpdated(
        id=inv.id, org_id=org.id, issuer_id=org.issuer_id, user_title=after.user_title,
        scopes=after.scopes, metadata=after.metadata, pii=cmd.pii, changed=changed,
        updated_at=inv.changed_at(cmd.now))]  # fmt: skip


def _check_scopes(org: Org, scopes: list[str]) -> None:
    if not scopes:
        raise _invalid("scopes", "required", "at least one scope is required")
    vocabulary = org.profile.scopes
    if vocabulary and (unknown := [s for s in scopes if s not in vocabulary]):
        raise _invalid("scopes", "unknown_scope", f"not scopes of the organization: {unknown}")


def _invalid(field: str, code: str, message: str) -> Unprocessable:
    problem = FieldProblem(field=field, code=code, message=message)
    return Unprocessable(message, reason=f"invitation.{code}", fields=[problem])


def _answer(cmd: AnswerInvitation, state: Organization) -> list[Event]:
    """Every refusal of a link is the same 404 until the token matched: a guessed or stale link
    learns nothing about the invitation."""
    unknown = NotFound("no such invitation", reason="invitation.not_found")
    if not isinstance(state, Org) or state.status == "deleting":
        raise unknown
    inv = state.invitations.get(cmd.invitation_id)
    if inv is None or not hmac.compare_digest(inv.token_sha256, cmd.token_sha256):
        raise unknown
    org = _unfrozen(state)
    _open(inv, cmd.now)
    at = inv.changed_at(cmd.now)
    if not cmd.accept:
        return [OrganizationInvitationDeclined(
            id=inv.id, org_id=org.id, issuer_id=org.issuer_id, declined_at=at)]  # fmt: skip
    if (
        cmd.user_id is None
        or not cmd.user_email_hash
        or not hmac.compare_digest(cmd.user_email_hash, inv.email_hash)
    ):
        raise Conflict(
            "the invitation was sent to another address", reason="invitation.other_address"
        )
    if not org.profile.invitation_enabled:
        raise Conflict("the organization does not accept invitations", reason="invitation.disabled")
    ref = OrgRef(org_id=org.id, account_id=org.account_id, issuer_id=org.issuer_id)
    add = AddMember(
        ref=ref, member_id=cmd.user_id, member_type="user", now=at, scopes=inv.scopes,
        user_title=inv.user_title,
    )  # fmt: skip
    membership = org_members.decide(add, org)
    accepted = OrganizationInvitationAccepted(
        id=inv.id, org_id=org.id, issuer_id=org.issuer_id, user_id=cmd.user_id,
        scopes=inv.scopes, accepted_at=at,
    )  # fmt: skip
    return [accepted, *membership]


def evolve(org: Org, event: Event) -> Org:
    invitations = dict(org.invitations)
    match event:
        case OrganizationInvitationCreated():
            # A legacy event (its address in clear) reaches here upcast, with its hash.
            invitations[event.id] = Invitation(
                id=event.id, email_hash=event.email_hash or "",
                user_id_invited=event.user_id_invited, user_title=event.user_title,
                scopes=event.scopes, metadata=event.metadata, token_sha256=event.token_sha256,
                created_at=event.created_at, expires_at=event.expires_at,
            )  # fmt: skip
        case OrganizationInvitationUpdated():
            invitations[event.id] = msgspec.structs.replace(
                invitations[event.id], user_title=event.user_title, scopes=event.scopes,
                metadata=event.metadata, updated_at=event.updated_at,
            )  # fmt: skip
        case OrganizationInvitationResent():
            invitations[event.id] = msgspec.structs.replace(
                invitations[event.id], token_sha256=event.token_sha256, updated_at=event.sent_at,
                resent_at=event.sent_at,
            )  # fmt: skip
        case OrganizationInvitationAccepted():
            invitations[event.id] = msgspec.structs.replace(
                invitations[event.id], status="accepted", user_id_invited=event.user_id,
                updated_at=event.accepted_at,
            )  # fmt: skip
        case OrganizationInvitationDeclined():
            invitations[event.id] = msgspec.structs.replace(
                invitations[event.id], status="declined", updated_at=event.declined_at
            )
        case OrganizationInvitationDeleted():
            invitations[event.id] = msgspec.structs.replace(
                invitations[event.id], status="revoked", updated_at=event.revoked_at
            )
        case OrganizationDeleted():
            invitations = {}
        case _:
            pass
    return msgspec.structs.replace(org, invitations=invitations)
