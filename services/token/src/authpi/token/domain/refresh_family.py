"""The RefreshTokenFamily aggregate (idp-api.md 5.4, 11.4, 12.3), kept as one short stream per
rotation generation: `refresh:<jti>` for each refresh token the family ever issued.

Why a stream per generation and not one per family: a family is refreshed hundreds of times, and
the event store folds a whole stream on every command. With one stream per token, every command
loads at most two events, whatever the family's age, so a refresh costs one transaction that
loads a tiny stream, appends one event and updates two view rows (the family's current jti, the
session's activity), at any rate of refreshes.

Exact reuse detection comes from the store's optimistic concurrency on that stream: a token's
stream holds at most one `refresh-token.rotated` (version 1, or 2 after the family's start), so
of two concurrent refreshes of one token exactly one appends it and the other, retried, finds
the token already rotated: a replay. The family's end (`refresh-family.revoked`) is appended to
the stream of its *current* token (read from the refresh_families view inside the transaction),
so it conflicts with a concurrent rotation of that same token: either the rotation wins and the
retried revocation ends the next token (a revocation that finds its token already rotated is
retried too: StaleGeneration), or the revocation wins and the rotation finds the family
revoked. No refresh can slip past a revocation.

States of one token's stream: Unused (no event, or only the family's start), Rotated, Revoked."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.sessions import (
    RefreshFamilyRevoked,
    RefreshFamilyStarted,
    RefreshTokenRotated,
)
from authpi.errors import VersionConflict


class StaleGeneration(VersionConflict):
    """A family's end was aimed at a token that has just been rotated: the store retries the
    transaction, which reads the family's new current token."""


class StartFamily(msgspec.Struct, frozen=True, kw_only=True):
    family_id: str
    issuer_id: str
    client_id: str
    user_id: str
    session_id: str
    jti: str
    scopes: list[str]
    resources: list[str] = []
    org_id: str | None = None
    auth_time: int  # Unix s
    started_at: int
    token_sha256: str | None = None  # of the first refresh token, when signed before


class Rotate(msgspec.Struct, frozen=True, kw_only=True):
    family_id: str
    issuer_id: str
    session_id: str
    jti: str
    next_jti: str
    rotated_at: int
    next_token_sha256: str | None = None  # of the next refresh token as issued


class RevokeFamily(msgspec.Struct, frozen=True, kw_only=True):
    family_id: str
    issuer_id: str
    session_id: str
    jti: str  # the family's current token
    reason: str
    revoked_at: int


RefreshCommand = StartFamily | Rotate | RevokeFamily


class Unused(msgspec.Struct, frozen=True):
    started: bool = False


class Rotated(msgspec.Struct, frozen=True, kw_only=True):
    next_jti: str


class Revoked(msgspec.Struct, frozen=True):
    pass


RefreshToken = Unused | Rotated | Revoked
INITIAL: RefreshToken = Unused()


def decide(cmd: RefreshCommand, state: RefreshToken) -> list[Event]:
    match cmd, state:
        case StartFamily(), Unused(started=False):
            return [
                RefreshFamilyStarted(
                    family_id=cmd.family_id,
                    issuer_id=cmd.issuer_id,
                    client_id=cmd.client_id,
                    user_id=cmd.user_id,
                    session_id=cmd.session_id,
                    jti=cmd.jti,
                    scopes=cmd.scopes,
                    resources=cmd.resources,
                    org_id=cmd.org_id,
                    auth_time=cmd.auth_time,
                    started_at=cmd.started_at,
                    token_sha256=cmd.token_sha256,
                )
            ]
        case Rotate(), Unused():
            return [
                RefreshTokenRotated(
                    family_id=cmd.family_id,
                    issuer_id=cmd.issuer_id,
                    session_id=cmd.session_id,
                    jti=cmd.jti,
                    next_jti=cmd.next_jti,
                    rotated_at=cmd.rotated_at,
                    next_token_sha256=cmd.next_token_sha256,
                )
            ]
        case RevokeFamily(), Unused():
            return [
                RefreshFamilyRevoked(
                    family_id=cmd.family_id,
                    issuer_id=cmd.issuer_id,
                    session_id=cmd.session_id,
                    jti=cmd.jti,
                    reason=cmd.reason,
                    revoked_at=cmd.revoked_at,
                )
            ]
        case RevokeFamily(), Rotated():
            # The view named this token current, but a rotation committed in between: the
            # command is planned again from the view, which now names the next token.
            raise StaleGeneration(f"refresh:{cmd.jti}", 1)
        case _:
            # Rotating a rotated token is a replay, rotating a revoked one refused: the caller
            # tells them apart by the state. A revocation of a token already rotated or revoked
            # has nothing to end on this stream.
            return []


def evolve(state: RefreshToken, event: Event) -> RefreshToken:
    match state, event:
        case Unused(), RefreshFamilyStarted():
            return Unused(started=True)
        case Unused(), RefreshTokenRotated() as e:
            return Rotated(next_jti=e.next_jti)
        case Unused(), RefreshFamilyRevoked():
            return Revoked()
        case _:
            return state
