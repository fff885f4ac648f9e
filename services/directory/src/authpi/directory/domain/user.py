"""The User aggregate (core-api.md 3.9, platform.md 1.7). PII arrives already sealed under the
user's data key; the decider only sees ciphertext and the username hash. Statuses: `active`,
`suspended`, `disabled` (blocking ones emit `user.blocked`, the way back `user.unblocked`) and
`deleted` (terminal; the handler destroys the data key in the same transaction).

Signup approval (core-api.md 3.10): a signup the issuer holds starts `pending_approval` with
`user.approval.requested`; only a decision moves it on. Approving emits `user.approval.approved`
with `user.unblocked` (status `active`), rejecting `user.approval.rejected` with `user.blocked`
(status `blocked`): the status events are the ones every follower of user statuses (the token
service's login, the gateway) already applies, the approval events the public record."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    UserApprovalApproved,
    UserApprovalRejected,
    UserApprovalRequested,
    UserBlocked,
    UserCreated,
    UserDeleted,
    UserSsoLinked,
    UserSsoProvisioned,
    UserUnblocked,
    UserUpdated,
)
from authpi.directory.domain.commands.user import (
    CreateUser,
    DecideApproval,
    DeleteUser,
    LinkSsoIdentity,
    SsoLink,
    UpdateUser,
)
from authpi.errors import Conflict, NotFound
from authpi.web.etag import check_if_match, etag_of, strictly_after

BLOCKING = ("suspended", "disabled")
PENDING = "pending_approval"
REJECTED = "blocked"
DECISIONS = ("approve", "reject")


class Absent(msgspec.Struct, frozen=True):
    pass


class Present(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    status: str
    username_hash: str
    scopes: list[str] = []
    metadata: dict[str, Any] = {}
    created_at: int = 0
    updated_at: int | None = None
    # Upstream identities linked through organization SSO (SsoLink.key); the ETag ignores them.
    sso_links: frozenset[str] = frozenset()

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)


class Deleted(msgspec.Struct, frozen=True):
    id: str
    issuer_id: str


class Stale(Conflict):
    """The handler prepared the update from an older version; it reads again and retries."""


User = Absent | Present | Deleted
INITIAL: User = Absent()
UserCommand = CreateUser | UpdateUser | DeleteUser | DecideApproval | LinkSsoIdentity


def decide(cmd: UserCommand, state: User) -> list[Event]:
    match cmd, state:
        case CreateUser(), Absent() if cmd.held:
            requested = {"status": "pending", "requested_at": cmd.now}
            return [
                _created(cmd),
                UserApprovalRequested(
                    id=cmd.user_id,
                    issuer_id=cmd.issuer_id,
                    approval=requested,
                    requested_at=cmd.now,
                ),
            ]
        case CreateUser(), Absent() if cmd.sso is not None:
            return [_created(cmd), _provisioned(cmd, cmd.sso)]
        case CreateUser(), Absent():
            return [_created(cmd)]
        case LinkSsoIdentity(), Present() if state.issuer_id == cmd.issuer_id:
            return _linked(cmd, state)
        case CreateUser(), _:
            raise Conflict("the user already exists", reason="user.exists")
        case DeleteUser(), Deleted() if state.issuer_id == cmd.issuer_id:
            return []
        case DeleteUser(), Present() if state.issuer_id == cmd.issuer_id:
            check_if_match(cmd.if_match, state.etag)
            at = strictly_after(cmd.now, state.updated_at or state.created_at)
            return [UserDeleted(id=state.id, issuer_id=state.issuer_id, deleted_at=at)]
        case DecideApproval(), Present() if state.issuer_id == cmd.issuer_id:
            check_if_match(cmd.if_match, state.etag)
            return _decided(cmd, state)
        case UpdateUser(), Present() if state.issuer_id == cmd.issuer_id:
            check_if_match(cmd.if_match, state.etag)
            if cmd.based_on != state.etag:
                raise Stale("the user changed concurrently; retry", reason="user.stale")
            return _updated(cmd, state)
        case _:
            raise NotFound("no such user", reason="user.not_found")


def _provisioned(cmd: CreateUser, link: SsoLink) -> Event:
    return UserSsoProvisioned(
        id=cmd.user_id, issuer_id=cmd.issuer_id, org_id=link.org_id, protocol=link.protocol,
        external_issuer=link.external_issuer, external_subject=link.external_subject,
        provisioned_at=cmd.now,
    )  # fmt: skip


def _linked(cmd: LinkSsoIdentity, user: Present) -> list[Event]:
    """The first sign-in of an identity links it (platform.md 6.3 `user.sso.linked`); later ones
    decide nothing."""
    link = cmd.link
    if link.key in user.sso_links:
        return []
    return [UserSsoLinked(
        id=user.id, issuer_id=user.issuer_id, org_id=link.org_id, protocol=link.protocol,
        external_issuer=link.external_issuer, external_subject=link.external_subject,
        linked_at=cmd.now,
    )]  # fmt: skip


def _decided(cmd: DecideApproval, user: Present) -> list[Event]:
    if cmd.decision not in DECISIONS:
        raise Conflict(f"unknown decision {cmd.decision}", reason="approval.decision")
    if user.status != PENDING:
        raise Conflict("the user is no longer waiting for approval", reason="approval.decided")
    at = strictly_after(cmd.now, user.updated_at or user.created_at)
    approved = cmd.decision == "approve"
    approval: dict[str, Any] = {
        "status": "approved" if approved else "rejected",
        "requested_at": user.created_at,
        "decided_at": at,
        "decided_by": cmd.decided_by,
        "reason": cmd.reason,
    }
    common: dict[str, Any] = {
        "id": user.id,
        "issuer_id": user.issuer_id,
        "status_reason": cmd.reason,
        "status_by": cmd.decided_by,
        "status_at": at,
    }
    if approved:
        return [UserApprovalApproved(approval=approval, **common), UserUnblocked(**common)]
    return [
        UserApprovalRejected(approval=approval, **common),
        UserBlocked(status=REJECTED, **common),
    ]


def _created(cmd: CreateUser) -> UserCreated:
    return UserCreated(
        id=cmd.user_id,
        issuer_id=cmd.issuer_id,
        status=PENDING if cmd.held else "active",
        username_hash=cmd.username_hash,
        username_type=cmd.username_type,
        pii=cmd.pii,
        method=cmd.method,
        region=cmd.region,
        store_id=cmd.store_id,
        scopes=cmd.scopes,
        metadata=cmd.metadata,
        created_at=cmd.now,
    )


def _updated(cmd: UpdateUser, user: Present) -> list[Event]:
    at = strictly_after(cmd.now, user.updated_at or user.created_at)
    events: list[Event] = []
    changed = list(cmd.pii_changed)
    if cmd.scopes is not None and cmd.scopes != user.scopes:
        changed.append("scopes")
    if cmd.metadata is not None and cmd.metadata != user.metadata:
        changed.append("metadata")
    if changed:
        events.append(
            UserUpdated(
                id=user.id,
                issuer_id=user.issuer_id,
                changed=changed,
                pii=cmd.pii if cmd.pii_changed else None,
                username_hash=cmd.username_hash if "username" in changed else None,
                scopes=cmd.scopes if "scopes" in changed else None,
                metadata=cmd.metadata if "metadata" in changed else None,
                updated_at=at,
            )
        )
    if cmd.status is not None and cmd.status != user.status:
        if user.status == PENDING:
            raise Conflict(
                "a user waiting for approval is approved or rejected through the approvals",
                reason="user.pending_approval",
            )
        events.append(_status_event(cmd, user, at))
    return events


def _status_event(cmd: UpdateUser, user: Present, at: int) -> Event:
    if cmd.status in BLOCKING:
        return UserBlocked(
            id=user.id,
            issuer_id=user.issuer_id,
            status=str(cmd.status),
            status_reason=cmd.status_reason,
            status_by=cmd.status_by,
            status_at=at,
        )
    if cmd.status == "active":
        return UserUnblocked(
            id=user.id,
            issuer_id=user.issuer_id,
            status_reason=cmd.status_reason,
            status_by=cmd.status_by,
            status_at=at,
        )
    raise Conflict(f"a user cannot move to {cmd.status}", reason="user.bad_status")


def evolve(state: User, event: Event) -> User:
    match state, event:
        case Absent(), UserCreated():
            return Present(
                id=event.id,
                issuer_id=event.issuer_id,
                status=event.status,
                username_hash=event.username_hash,
                scopes=event.scopes,
                metadata=event.metadata,
                created_at=event.created_at,
            )
        case Present(), UserUpdated():
            return msgspec.structs.replace(
                state,
                username_hash=event.username_hash or state.username_hash,
                scopes=event.scopes if event.scopes is not None else state.scopes,
                metadata=event.metadata if event.metadata is not None else state.metadata,
                updated_at=event.updated_at,
            )
        case Present(), UserBlocked() | UserUnblocked():
            return msgspec.structs.replace(state, status=event.status, updated_at=event.status_at)
        case Present(), UserDeleted():
            return Deleted(state.id, state.issuer_id)
        case Present(), UserSsoProvisioned() | UserSsoLinked():
            link = SsoLink(
                org_id=event.org_id, protocol=event.protocol,
                external_issuer=event.external_issuer, external_subject=event.external_subject,
            )  # fmt: skip
            return msgspec.structs.replace(state, sso_links=state.sso_links | {link.key})
        case _:
            return state
