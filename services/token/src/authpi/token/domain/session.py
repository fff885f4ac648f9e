"""The Session aggregate (core-api.md 3.11, idp-api.md 11.1): one `session:<id>` stream per op
(SSO) or rp (per client) session.

Statuses: `active` (may refresh), `suspended` (frozen by an administrator, reactivatable),
`revoked` and `expired` (terminal). A session is created `active`: an op session when the user
authenticates, an rp session when its first tokens are issued (the code exchange), so the
`inactive` status of the spec's model never lasts long enough to be stored.

Revoking an already revoked session decides nothing (200, unchanged); revoking an expired one is
a Conflict; reactivating anything but a suspended session is a Conflict. A refresh-token replay
marks the session compromised and revokes it."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.sessions import (
    Authentication,
    Device,
    SessionCompromised,
    SessionCreated,
    SessionExpired,
    SessionTerminated,
    SessionUpdated,
)
from authpi.errors import Conflict, NotFound
from authpi.web.etag import check_if_match, etag_of


class CreateSession(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    issuer_id: str
    account_id: str
    user_id: str
    type: str  # op | rp
    client_id: str | None = None
    op_session_id: str | None = None
    auth_method: str
    auth_time: int  # Unix ms
    device: Device = Device()
    idle_timeout: int  # seconds
    expires_at: int  # Unix ms
    cookie_sha256: str | None = None
    created_at: int


class SuspendSession(msgspec.Struct, frozen=True, kw_only=True):
    reason: str | None = None
    by: str | None = None
    at: int
    if_match: str | None = None  # core-api.md 2.3, compared with the state


class ReactivateSession(msgspec.Struct, frozen=True, kw_only=True):
    by: str | None = None
    at: int
    if_match: str | None = None  # core-api.md 2.3, compared with the state


class RevokeSession(msgspec.Struct, frozen=True, kw_only=True):
    reason: str  # logout | admin | cascade | consent_revoked | ...
    by: str | None = None
    cascade_from: str | None = None
    at: int
    if_match: str | None = None  # core-api.md 2.3, compared with the state
    # A cascade (or a bulk end) skips sessions that already ended, instead of refusing.
    lenient: bool = False


class ExpireSession(msgspec.Struct, frozen=True, kw_only=True):
    reason: str  # max_age | idle | evicted
    at: int


class CompromiseSession(msgspec.Struct, frozen=True, kw_only=True):
    reason: str  # refresh_token_reuse | code_reuse
    jti: str | None = None
    at: int


SessionCommand = (
    CreateSession
    | SuspendSession
    | ReactivateSession
    | RevokeSession
    | ExpireSession
    | CompromiseSession
)


class NoSession(msgspec.Struct, frozen=True):
    pass


class Live(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    issuer_id: str
    user_id: str
    type: str
    client_id: str | None
    status: str  # active | suspended | revoked | expired
    created_at: int
    updated_at: int | None = None

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)


Session = NoSession | Live
INITIAL: Session = NoSession()
ENDED = frozenset({"revoked", "expired"})


def decide(cmd: SessionCommand, state: Session) -> list[Event]:
    if isinstance(cmd, CreateSession):
        return _create(cmd) if isinstance(state, NoSession) else []
    if isinstance(state, NoSession):
        raise NotFound("session not found", reason="session.not_found")
    if isinstance(cmd, SuspendSession | ReactivateSession | RevokeSession):
        check_if_match(cmd.if_match, state.etag)
    match cmd:
        case SuspendSession():
            if state.status == "suspended":
                return []
            if state.status in ENDED:
                raise Conflict(f"the session is {state.status}", reason="session.ended")
            return [_updated(state, "suspended", cmd.reason, cmd.by, cmd.at)]
        case ReactivateSession():
            if state.status != "suspended":
                raise Conflict("only a suspended session is reactivated", reason="session.status")
            return [_updated(state, "active", None, cmd.by, cmd.at)]
        case RevokeSession():
            if state.status == "revoked" or (cmd.lenient and state.status in ENDED):
                return []
            if state.status == "expired":
                raise Conflict("the session has expired", reason="session.ended")
            return [_terminated(state, cmd.reason, cmd.by, cmd.cascade_from, cmd.at)]
        case ExpireSession():
            if state.status in ENDED:
                return []
            return [
                SessionExpired(
                    session_id=state.session_id,
                    issuer_id=state.issuer_id,
                    user_id=state.user_id,
                    client_id=state.client_id,
                    reason=cmd.reason,
                    expired_at=cmd.at,
                )
            ]
        case CompromiseSession():
            if state.status in ENDED:
                return []
            return [
                SessionCompromised(
                    session_id=state.session_id,
                    issuer_id=state.issuer_id,
                    user_id=state.user_id,
                    client_id=state.client_id,
                    compromised_reason=cmd.reason,
                    jti=cmd.jti,
                    compromised_at=cmd.at,
                ),
                _terminated(state, "compromised", "system", None, cmd.at),
            ]
        case _:
            return []


def _create(cmd: CreateSession) -> list[Event]:
    return [
        SessionCreated(
            session_id=cmd.session_id,
            issuer_id=cmd.issuer_id,
            account_id=cmd.account_id,
            user_id=cmd.user_id,
            session_type=cmd.type,
            client_id=cmd.client_id,
            op_session_id=cmd.op_session_id,
            authentication=Authentication(method=cmd.auth_method, authenticated_at=cmd.auth_time),
            device=cmd.device,
            idle_timeout=cmd.idle_timeout,
            expires_at=cmd.expires_at,
            cookie_sha256=cmd.cookie_sha256,
            created_at=cmd.created_at,
        )
    ]


def _updated(state: Live, status: str, reason: str | None, by: str | None, at: int) -> Event:
    return SessionUpdated(
        session_id=state.session_id,
        issuer_id=state.issuer_id,
        user_id=state.user_id,
        client_id=state.client_id,
        status=status,
        changed=["status"],
        status_reason=reason,
        status_by=by,
        updated_at=at,
    )


def _terminated(
    state: Live, reason: str, by: str | None, cascade_from: str | None, at: int
) -> Event:
    return SessionTerminated(
        session_id=state.session_id,
        issuer_id=state.issuer_id,
        user_id=state.user_id,
        client_id=state.client_id,
        revoked_reason=reason,
        status_by=by,
        cascade_from=cascade_from,
        revoked_at=at,
    )


def evolve(state: Session, event: Event) -> Session:
    match state, event:
        case NoSession(), SessionCreated() as e:
            return Live(
                session_id=e.session_id,
                issuer_id=e.issuer_id,
                user_id=e.user_id,
                type=e.session_type,
                client_id=e.client_id,
                status=e.status,
                created_at=e.created_at,
            )
        case Live(), SessionUpdated() as e:
            return msgspec.structs.replace(state, status=e.status, updated_at=e.updated_at)
        case Live(), SessionTerminated() as e:
            return msgspec.structs.replace(state, status="revoked", updated_at=e.revoked_at)
        case Live(), SessionExpired() as e:
            return msgspec.structs.replace(state, status="expired", updated_at=e.expired_at)
        case Live(), SessionCompromised() as e:
            return msgspec.structs.replace(state, updated_at=e.compromised_at)
        case _:
            return state
