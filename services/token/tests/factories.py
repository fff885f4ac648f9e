"""Builders of the token service's commands and events, and of the directory events its caches
fold, for tests: each takes keyword overrides of its defaults."""

from __future__ import annotations

from typing import Any

from authpi.contracts.directory import ClientConfig, ClientCreated
from authpi.contracts.token import AccessTokenRevoked, SigningKeyCreated, SigningKeyRetired
from authpi.token.domain.commands import CreateSigningKey, RetireSigningKey, RevokeToken

KID = "k1"
JWK = {"kty": "OKP", "crv": "Ed25519", "x": "abc", "alg": "EdDSA", "use": "sig", "kid": KID}
_KEY = {"kid": KID, "issuer_id": "i_1", "account_id": "acc_1", "alg": "EdDSA", "public_jwk": JWK}
_REVOKED = {
    "jti": "jti_1",
    "issuer_id": "i_1",
    "client_id": "c_1",
    "token_type": "access_token",
    "expires_at": 900_000,
}


def create_signing_key(**overrides: Any) -> CreateSigningKey:
    return CreateSigningKey(**{**_KEY, "created_at": 10, **overrides})


def signing_key_created(**overrides: Any) -> SigningKeyCreated:
    return SigningKeyCreated(**{**_KEY, "created_at": 10, **overrides})


def retire_signing_key(**overrides: Any) -> RetireSigningKey:
    return RetireSigningKey(**{"reason": "rotated", "retired_at": 20, **overrides})


def signing_key_retired(**overrides: Any) -> SigningKeyRetired:
    fields = {k: v for k, v in _KEY.items() if k not in ("alg", "public_jwk")}
    return SigningKeyRetired(**{**fields, "reason": "rotated", "retired_at": 20, **overrides})


def revoke_token(**overrides: Any) -> RevokeToken:
    return RevokeToken(**{**_REVOKED, "revoked_at": 100, **overrides})


def access_token_revoked(**overrides: Any) -> AccessTokenRevoked:
    return AccessTokenRevoked(**{**_REVOKED, "revoked_at": 100, **overrides})


def client_created(**overrides: Any) -> ClientCreated:
    config = ClientConfig(
        grant_types=["client_credentials"], scopes=["a:read"], access_token_ttl=900,
        response_signature_alg="EdDSA",
    )  # fmt: skip
    return ClientCreated(
        **{
            "id": "c_1", "issuer_id": "i_1", "name": "svc", "client_type": "m2m",
            "confidential": True, "config": config, "secret_sha256": "d1",
            "secret_hint": "abcd", "created_at": 1, **overrides,
        }
    )  # fmt: skip
