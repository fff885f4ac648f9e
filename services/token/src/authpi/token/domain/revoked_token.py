"""The RevokedToken aggregate (RFC 7009, idp-api.md 7): one `revoked-token:<jti>` stream per
revoked token. Revoking is idempotent: a token already revoked decides nothing, and RFC 7009
section 2.2 makes the answer a success either way."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.token import AccessTokenRevoked
from authpi.token.domain.commands import RevokeToken


class NotRevoked(msgspec.Struct, frozen=True):
    pass


class Revoked(msgspec.Struct, frozen=True, kw_only=True):
    jti: str
    expires_at: int


RevokedToken = NotRevoked | Revoked
INITIAL: RevokedToken = NotRevoked()
RevokedTokenCommand = RevokeToken


def decide(cmd: RevokedTokenCommand, state: RevokedToken) -> list[Event]:
    match cmd, state:
        case RevokeToken(), NotRevoked():
            return [
                AccessTokenRevoked(
                    jti=cmd.jti,
                    issuer_id=cmd.issuer_id,
                    client_id=cmd.client_id,
                    token_type=cmd.token_type,
                    expires_at=cmd.expires_at,
                    revoked_at=cmd.revoked_at,
                )
            ]
        case _:
            return []  # already revoked


def evolve(state: RevokedToken, event: Event) -> RevokedToken:
    match state, event:
        case NotRevoked(), AccessTokenRevoked():
            return Revoked(jti=event.jti, expires_at=event.expires_at)
        case _:
            return state
