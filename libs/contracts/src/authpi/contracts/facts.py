"""High-volume runtime facts (DESIGN.md 3): not state, so not in any event store. Producers
publish them to the FACTS stream in batches (one message holds many facts) on
`<ns>.fact.<fact type>`; consumers aggregate them (verifier usage, billing metering, audit
counters). A batch's Nats-Msg-Id is its `batch_id`, so a re-published batch is dropped."""

from __future__ import annotations

import msgspec


class MachineTokenIssued(msgspec.Struct, frozen=True, kw_only=True, tag="machine.token.issued"):
    """A client_credentials token was minted (platform.md 6.3)."""

    account_id: str
    issuer_id: str
    grant_type: str = "client_credentials"
    client_id: str
    agent_id: str | None = None
    verifier_id: str | None = None
    scope: str
    aud: str
    jti: str
    issued_at: int  # Unix ms
    expires_at: int  # Unix ms
    dat_type: str | None = None


class HumanSignIn(msgspec.Struct, frozen=True, kw_only=True, tag="human.sign-in"):
    """A code exchange started a new rp session: one sign-in of a user to a client."""

    account_id: str
    issuer_id: str
    client_id: str
    user_id: str
    session_id: str
    op_session_id: str
    method: str
    signed_in_at: int  # Unix ms


class SessionTokenRefreshed(
    msgspec.Struct, frozen=True, kw_only=True, tag="session.token-refreshed"
):
    """A refresh grant succeeded (platform.md 6.3: a high-volume fact, not a stored event)."""

    account_id: str
    issuer_id: str
    client_id: str
    user_id: str
    session_id: str
    refresh_count: int | None = None
    jti: str
    scope: str
    access_token_issued_at: int  # Unix ms


class ApiKeyVerified(msgspec.Struct, frozen=True, kw_only=True, tag="api-key.verified"):
    """The gateway accepted an API key on a Core API request (metered as
    `api_key_verification`, platform.md 5.5)."""

    account_id: str
    key_id: str
    verified_at: int  # Unix ms


Fact = MachineTokenIssued | HumanSignIn | SessionTokenRefreshed | ApiKeyVerified


class FactBatch(msgspec.Struct, frozen=True, kw_only=True):
    batch_id: str
    facts: list[Fact]


_batch_encoder = msgspec.json.Encoder()
_batch_decoder = msgspec.json.Decoder(FactBatch)


def encode_batch(batch: FactBatch) -> bytes:
    return _batch_encoder.encode(batch)


def decode_batch(raw: bytes) -> FactBatch:
    return _batch_decoder.decode(raw)
