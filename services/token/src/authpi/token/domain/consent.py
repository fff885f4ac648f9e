"""The Consent aggregate (idp-api.md 4.3, 9): one `consent:<user_id>:<client_id>` stream. A grant
covers the scopes granted so far (a later grant adds scopes); revoking withdraws all of them, and
the next authorization of that client asks again. Revoking a consent that does not exist decides
nothing (the endpoint answers 200 either way)."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.sessions import UserConsentGranted, UserConsentRevoked


class GrantConsent(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    user_id: str
    client_id: str
    scopes: list[str]
    at: int


class RevokeConsent(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: str
    user_id: str
    client_id: str
    at: int


ConsentCommand = GrantConsent | RevokeConsent


class Consent(msgspec.Struct, frozen=True, kw_only=True):
    scopes: frozenset[str] = frozenset()


INITIAL = Consent()


def decide(cmd: ConsentCommand, state: Consent) -> list[Event]:
    match cmd:
        case GrantConsent():
            if set(cmd.scopes) <= state.scopes:
                return []
            scopes = sorted(state.scopes | set(cmd.scopes))
            return [
                UserConsentGranted(
                    issuer_id=cmd.issuer_id,
                    user_id=cmd.user_id,
                    client_id=cmd.client_id,
                    scopes=scopes,
                    granted_at=cmd.at,
                )
            ]
        case RevokeConsent():
            if not state.scopes:
                return []
            return [
                UserConsentRevoked(
                    issuer_id=cmd.issuer_id,
                    user_id=cmd.user_id,
                    client_id=cmd.client_id,
                    scopes=sorted(state.scopes),
                    revoked_at=cmd.at,
                )
            ]


def evolve(state: Consent, event: Event) -> Consent:
    match event:
        case UserConsentGranted():
            return Consent(scopes=frozenset(event.scopes))
        case UserConsentRevoked():
            return Consent()
        case _:
            return state
