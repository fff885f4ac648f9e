"""The SigningKey aggregate (idp-api.md 13): created with its public JWK, published in the JWKS
while active, retired when it leaves the overlap window. Retired is terminal."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.token import SigningKeyCreated, SigningKeyRetired
from authpi.errors import Conflict, NotFound
from authpi.token.domain.commands import CreateSigningKey, RetireSigningKey


class Absent(msgspec.Struct, frozen=True):
    pass


class Active(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    issuer_id: str
    account_id: str
    alg: str
    created_at: int


class Retired(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    issuer_id: str


# The published algorithms (idp-api.md 13.1): every issuer keeps a key of each.
ALGORITHMS = ("ES256", "EdDSA", "RS256")

SigningKey = Absent | Active | Retired
INITIAL: SigningKey = Absent()
SigningKeyCommand = CreateSigningKey | RetireSigningKey


def decide(cmd: SigningKeyCommand, state: SigningKey) -> list[Event]:
    match cmd, state:
        case CreateSigningKey(), Absent():
            return [
                SigningKeyCreated(
                    kid=cmd.kid,
                    issuer_id=cmd.issuer_id,
                    account_id=cmd.account_id,
                    alg=cmd.alg,
                    public_jwk=cmd.public_jwk,
                    created_at=cmd.created_at,
                )
            ]
        case CreateSigningKey(), Active() if state.alg == cmd.alg:
            return []
        case CreateSigningKey(), _:
            raise Conflict("the key id is already used", reason="signing_key.kid_taken")
        case RetireSigningKey(), Active():
            return [
                SigningKeyRetired(
                    kid=state.kid,
                    issuer_id=state.issuer_id,
                    account_id=state.account_id,
                    reason=cmd.reason,
                    retired_at=cmd.retired_at,
                )
            ]
        case RetireSigningKey(), Retired():
            return []
        case _:
            raise NotFound("no such signing key", reason="signing_key.absent")


def evolve(state: SigningKey, event: Event) -> SigningKey:
    match state, event:
        case Absent(), SigningKeyCreated():
            return Active(
                kid=event.kid,
                issuer_id=event.issuer_id,
                account_id=event.account_id,
                alg=event.alg,
                created_at=event.created_at,
            )
        case Active(), SigningKeyRetired():
            return Retired(kid=state.kid, issuer_id=state.issuer_id)
        case _:
            return state
