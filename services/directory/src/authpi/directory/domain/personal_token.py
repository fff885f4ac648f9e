"""The PersonalToken aggregate (core-api.md 3.5): a user's `ptk_` token, known to the store only
by its SHA-256 digest and a hint. `active` tokens authenticate; `revoked` is terminal; deleting
removes it. Revoke and delete obey the grant-subset rule (grant_subset.py). Actions compare
`If-Match` against the folded state, atomically with the append."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import (
    PersonalTokenCreated,
    PersonalTokenDeleted,
    PersonalTokenUpdated,
)
from authpi.directory.domain.commands.personal_token import (
    CreatePersonalToken,
    DeletePersonalToken,
    RevokePersonalToken,
)
from authpi.directory.domain.grant_subset import check_within
from authpi.errors import Conflict, NotFound
from authpi.web.etag import check_if_match, etag_of, strictly_after


class Absent(msgspec.Struct, frozen=True):
    pass


class Live(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    user_id: str
    status: str
    created_at: int
    updated_at: int | None = None
    scopes: list[str] = []

    @property
    def etag(self) -> str:
        return etag_of(self.created_at, self.updated_at)

    def changed_at(self, now: int) -> int:
        return strictly_after(now, self.updated_at or self.created_at)


class Deleted(msgspec.Struct, frozen=True):
    id: str


PersonalToken = Absent | Live | Deleted
INITIAL: PersonalToken = Absent()
TokenCommand = CreatePersonalToken | RevokePersonalToken | DeletePersonalToken


def decide(cmd: TokenCommand, state: PersonalToken) -> list[Event]:
    match cmd, state:
        case CreatePersonalToken(), Absent():
            return [_created(cmd)]
        case CreatePersonalToken(), _:
            raise Conflict("the personal token already exists", reason="personal_token.exists")
        case RevokePersonalToken(), Live() if state.account_id == cmd.account_id:
            check_within(cmd.held, state.scopes, "personal token")
            check_if_match(cmd.if_match, state.etag)
            if state.status == "revoked":
                return []
            return [
                PersonalTokenUpdated(
                    id=state.id,
                    user_id=state.user_id,
                    changed=["status"],
                    status="revoked",
                    status_reason=cmd.status_reason,
                    status_by=cmd.status_by,
                    updated_at=state.changed_at(cmd.now),
                )
            ]
        case DeletePersonalToken(), Live() if state.account_id == cmd.account_id:
            check_within(cmd.held, state.scopes, "personal token")
            check_if_match(cmd.if_match, state.etag)
            return [
                PersonalTokenDeleted(
                    id=state.id, user_id=state.user_id, deleted_at=state.changed_at(cmd.now)
                )
            ]
        case _:
            raise NotFound("no such personal token", reason="personal_token.not_found")


def _created(cmd: CreatePersonalToken) -> PersonalTokenCreated:
    return PersonalTokenCreated(
        id=cmd.token_id,
        account_id=cmd.account_id,
        issuer_id=cmd.issuer_id,
        user_id=cmd.user_id,
        name=cmd.name,
        description=cmd.description,
        tags=cmd.tags,
        scopes=cmd.scopes,
        audience=cmd.audience,
        expires_at=cmd.expires_at,
        metadata=cmd.metadata,
        jti=cmd.token_id,
        token_sha256=cmd.token_sha256,
        token_hint=cmd.token_hint,
        created_at=cmd.now,
    )


def evolve(state: PersonalToken, event: Event) -> PersonalToken:
    match state, event:
        case Absent(), PersonalTokenCreated():
            return Live(
                id=event.id,
                account_id=event.account_id,
                user_id=event.user_id,
                status="active",
                created_at=event.created_at,
                scopes=event.scopes,
            )
        case Live(), PersonalTokenUpdated():
            return msgspec.structs.replace(
                state, status=event.status or state.status, updated_at=event.updated_at
            )
        case Live(), PersonalTokenDeleted():
            return Deleted(state.id)
        case _:
            return state
