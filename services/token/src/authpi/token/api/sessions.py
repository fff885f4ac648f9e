"""The Core API's session routes (core-api.md 3.11; contract 4.19, 4.22, `PublicSession` in 5.9):
get, revoke, suspend and reactivate one session of an issuer, and list a user's sessions
(filter `status`, not paginated: at most 50 live sessions). Scopes `issuers.sessions:read|write`
and `issuers.users.sessions:read`. Revoke and suspend take an optional `{"reason": ...}`;
revoking an op session revokes its rp sessions; revoking a revoked session answers it unchanged;
revoking an expired one, or reactivating anything but a suspended one, is 409. The cookie
secret is never part of the answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from authpi.contracts.base import Meta
from authpi.errors import FieldProblem, InvalidRequest, NotFound
from authpi.token.handlers.sessions import Sessions
from authpi.token.queries.sessions import SessionQueries, SessionRow
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal, Principal
from authpi.web.text import check_storable

ISSUER = "/v1/accounts/{account_id:str}/issuers/{issuer_id:str}"
SESSION = ISSUER + "/sessions/{session_id:str}"
USER_SESSIONS = ISSUER + "/users/{user_id:str}/sessions"
TAGS = ["Sessions"]
READ = [require_scope("issuers.sessions:read")]
WRITE = [require_scope("issuers.sessions:write")]
USER_READ = [require_scope("issuers.users.sessions:read")]
STATUSES = ("inactive", "active", "suspended", "revoked", "expired")
MAX_BODY = 16 * 1024
Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class PublicSession(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    user_id: str
    issuer_id: str
    type: str
    status: str
    status_at: int | None = None
    status_reason: str | None = None
    status_by: str | None = None
    authentication: dict[str, Any] | None = None
    op_session_id: str | None = None
    device: dict[str, Any] | None = None
    ttl: int | None = None
    idle_timeout: int | None = None
    last_activity_at: int | None = None
    access_token_issued_at: int | None = None
    refresh_token_issued_at: int | None = None
    refresh_count: int | None = None
    compromised: bool = False
    compromised_at: int | None = None
    compromised_reason: str | None = None
    revoked_reason: str | None = None
    metadata: dict[str, Any] = {}
    created_at: int
    updated_at: int | None = None
    expires_at: int | None = None
    revoked_at: int | None = None
    client: dict[str, Any] | None = None

    @classmethod
    def of(cls, row: SessionRow, client_name: str | None) -> PublicSession:
        return cls(
            id=row.id, user_id=row.user_id, issuer_id=row.issuer_id, type=row.type,
            status=row.status, status_at=row.status_at, status_reason=row.status_reason,
            status_by=row.status_by,
            authentication={"method": row.auth_method, "authenticated_at": row.auth_time},
            op_session_id=row.op_session_id, device=row.device or None,
            ttl=(row.expires_at - row.created_at) // 1000, idle_timeout=row.idle_timeout,
            last_activity_at=row.last_activity_at,
            access_token_issued_at=row.access_token_issued_at,
            refresh_token_issued_at=row.refresh_token_issued_at,
            refresh_count=row.refresh_count, compromised=row.compromised_at is not None,
            compromised_at=row.compromised_at, compromised_reason=row.compromised_reason,
            revoked_reason=row.revoked_reason, created_at=row.created_at,
            updated_at=row.updated_at, expires_at=row.expires_at, revoked_at=row.revoked_at,
            client={"id": row.client_id, "name": client_name} if row.client_id else None,
        )  # fmt: skip


@dataclass(frozen=True)
class SessionAdmin:
    """What the routes need: the write path, the read side and the client names."""

    sessions: Sessions
    queries: SessionQueries
    clients: Any  # a per-process client cache: get(client_id) -> ClientEntry | None

    async def require_issuer(self, account_id: str, issuer_id: str) -> None:
        settings = await self.queries.settings(None, issuer_id)
        if settings is None or settings.account_id != account_id:
            raise NotFound("no such issuer", reason="issuer.not_found")

    async def session(self, account_id: str, issuer_id: str, session_id: str) -> SessionRow:
        await self.require_issuer(account_id, issuer_id)
        row = await self.queries.session(None, session_id)
        if row is None or row.issuer_id != issuer_id or row.account_id != account_id:
            raise NotFound("session not found", reason="session.not_found")
        return row

    def public(self, row: SessionRow) -> PublicSession:
        client = self.clients.get(row.client_id) if row.client_id else None
        return PublicSession.of(row, client.name if client is not None else None)

    def answer(self, row: SessionRow) -> Response[One[PublicSession]]:
        return one(self.public(row), etag=etag_of(row.created_at, row.updated_at))


def _meta(principal: Principal, account_id: str, issuer_id: str, user_id: str) -> Meta:
    return Meta(
        account_id=account_id,
        issuer_id=issuer_id,
        actor=principal.actor(),
        trigger="api",
        subject={"user_id": user_id},
    )


def _by(principal: Principal) -> str:
    return principal.key_id or principal.user_id or principal.token_id or principal.type


async def _reason(request: Request[Any, Any, Any]) -> str | None:
    """The optional, untyped body's `reason` (contract 4.19)."""
    body = await request.body()
    if not body.strip():
        return None
    if len(body) > MAX_BODY:
        raise InvalidRequest("the body is too large", reason="session.body")
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest("the body is not JSON", reason="session.body") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be an object", reason="session.body")
    reason = data.get("reason")  # type: ignore[union-attr]
    if reason is None:
        return None
    if not isinstance(reason, str) or len(reason) > 500:
        problem = FieldProblem(field="reason", code="invalid_value", message="reason is a string")
        raise InvalidRequest(problem.message, reason="session.reason", fields=[problem])
    check_storable({"reason": reason})
    return reason


async def _change(
    admin: SessionAdmin,
    principal: Principal,
    account_id: str,
    issuer_id: str,
    session_id: str,
    act: Callable[[str | None, Meta], Awaitable[Any]],
) -> Response[One[PublicSession]]:
    """One status change of a session (revoke, suspend, reactivate): the session must be the
    account's and the issuer's, the change is recorded as the principal's, and the answer is the
    session as it now stands."""
    row = await admin.session(account_id, issuer_id, session_id)
    await act(_by(principal), _meta(principal, account_id, issuer_id, row.user_id))
    return admin.answer(await admin.session(account_id, issuer_id, session_id))


@get(SESSION, operation_id="getSession", summary="Get Session", tags=TAGS, guards=READ)
async def get_session(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    session_id: FromPath[str],
    admin: NamedDependency[SessionAdmin],
) -> Response[One[PublicSession]]:
    return admin.answer(await admin.session(account_id, issuer_id, session_id))


@post(SESSION + "/revoke", operation_id="revokeSession", summary="Revoke Session", tags=TAGS,
      guards=WRITE, status_code=200)  # fmt: skip
async def revoke_session(
    request: Request[Any, Any, Any],
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    session_id: FromPath[str],
    principal: InjectedPrincipal,
    admin: NamedDependency[SessionAdmin],
    if_match: IfMatch = None,
) -> Response[One[PublicSession]]:
    reason = await _reason(request) or "admin"
    return await _change(
        admin, principal, account_id, issuer_id, session_id,
        lambda by, meta: admin.sessions.revoke(
            issuer_id, session_id, reason=reason, by=by, meta=meta, if_match=if_match
        ),
    )  # fmt: skip


@post(SESSION + "/suspend", operation_id="suspendSession", summary="Suspend Session", tags=TAGS,
      guards=WRITE, status_code=200)  # fmt: skip
async def suspend_session(
    request: Request[Any, Any, Any],
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    session_id: FromPath[str],
    principal: InjectedPrincipal,
    admin: NamedDependency[SessionAdmin],
    if_match: IfMatch = None,
) -> Response[One[PublicSession]]:
    reason = await _reason(request)
    return await _change(
        admin, principal, account_id, issuer_id, session_id,
        lambda by, meta: admin.sessions.suspend(
            issuer_id, session_id, reason=reason, by=by, meta=meta, if_match=if_match
        ),
    )  # fmt: skip


@post(SESSION + "/reactivate", operation_id="reactivateSession", summary="Reactivate Session",
      tags=TAGS, guards=WRITE, status_code=200)  # fmt: skip
async def reactivate_session(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    session_id: FromPath[str],
    principal: InjectedPrincipal,
    admin: NamedDependency[SessionAdmin],
    if_match: IfMatch = None,
) -> Response[One[PublicSession]]:
    return await _change(
        admin, principal, account_id, issuer_id, session_id,
        lambda by, meta: admin.sessions.reactivate(
            issuer_id, session_id, by=by, meta=meta, if_match=if_match
        ),
    )  # fmt: skip


@get(USER_SESSIONS, operation_id="listUserSessions", summary="List User Sessions", tags=TAGS,
     guards=USER_READ)  # fmt: skip
async def list_user_sessions(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    user_id: FromPath[str],
    admin: NamedDependency[SessionAdmin],
    status: FromQuery[str | None] = None,
) -> Page[PublicSession]:
    if status is not None and status not in STATUSES:
        problem = FieldProblem(
            field="status", code="invalid_value", message=f"status must be one of {STATUSES}"
        )
        raise InvalidRequest(problem.message, reason="session.filter.status", fields=[problem])
    await admin.require_issuer(account_id, issuer_id)
    rows = await admin.queries.user_sessions(issuer_id, user_id, status)
    data = [admin.public(r) for r in rows if r.account_id == account_id]
    return Page(data=data, has_more=False, next_cursor=None)


ROUTES = [get_session, revoke_session, suspend_session, reactivate_session, list_user_sessions]


def sessions_router(admin: SessionAdmin) -> Router:
    return Router("/", route_handlers=ROUTES, dependencies={"admin": provide(admin)})
