"""Builders of the token service's commands and events, and of the directory events its caches
fold, for tests: each takes keyword overrides of its defaults."""

from __future__ import annotations

from typing import Any

from authpi.contracts.directory import ClientConfig, ClientCreated
from authpi.contracts.sessions import (
    Authentication,
    RefreshFamilyRevoked,
    RefreshFamilyStarted,
    RefreshTokenRotated,
    SessionCreated,
    SessionExpired,
    SessionTerminated,
    SessionUpdated,
    UserConsentGranted,
)
from authpi.contracts.token import AccessTokenRevoked, SigningKeyCreated, SigningKeyRetired
from authpi.token.domain.commands import CreateSigningKey, RetireSigningKey, RevokeToken
from authpi.token.domain.consent import GrantConsent, RevokeConsent
from authpi.token.domain.refresh_family import RevokeFamily, Rotate, StartFamily
from authpi.token.domain.session import CreateSession

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


# -- human login: sessions, refresh families, consents ----------------------------------------

_SESSION = {"session_id": "s_1", "issuer_id": "i_1", "user_id": "usr_1"}


def create_session(**overrides: Any) -> CreateSession:
    fields = {
        **_SESSION, "account_id": "acc_1", "type": "op", "auth_method": "password",
        "auth_time": 100, "idle_timeout": 43_200, "expires_at": 604_800_100,
        "cookie_sha256": "c" * 64, "created_at": 100,
    }  # fmt: skip
    return CreateSession(**{**fields, **overrides})


def session_created(**overrides: Any) -> SessionCreated:
    fields = {
        **_SESSION, "account_id": "acc_1", "session_type": "op",
        "authentication": Authentication(method="password", authenticated_at=100),
        "idle_timeout": 43_200, "expires_at": 604_800_100, "cookie_sha256": "c" * 64,
        "created_at": 100,
    }  # fmt: skip
    return SessionCreated(**{**fields, **overrides})


def session_updated(**overrides: Any) -> SessionUpdated:
    fields = {**_SESSION, "status": "suspended", "changed": ["status"], "updated_at": 200}
    return SessionUpdated(**{**fields, **overrides})


def session_terminated(**overrides: Any) -> SessionTerminated:
    fields = {**_SESSION, "revoked_reason": "admin", "revoked_at": 200}
    return SessionTerminated(**{**fields, **overrides})


def session_expired(**overrides: Any) -> SessionExpired:
    return SessionExpired(**{**_SESSION, "reason": "idle", "expired_at": 200, **overrides})


_FAMILY = {"family_id": "rtf_1", "issuer_id": "i_1", "session_id": "s_2", "jti": "j0"}


def start_family(**overrides: Any) -> StartFamily:
    fields = {
        **_FAMILY, "client_id": "c_1", "user_id": "usr_1", "scopes": ["openid"],
        "auth_time": 1, "started_at": 100,
    }  # fmt: skip
    return StartFamily(**{**fields, **overrides})


def refresh_family_started(**overrides: Any) -> RefreshFamilyStarted:
    fields = {
        **_FAMILY, "client_id": "c_1", "user_id": "usr_1", "scopes": ["openid"],
        "auth_time": 1, "started_at": 100,
    }  # fmt: skip
    return RefreshFamilyStarted(**{**fields, **overrides})


def rotate(**overrides: Any) -> Rotate:
    return Rotate(**{**_FAMILY, "next_jti": "j1", "rotated_at": 200, **overrides})


def refresh_token_rotated(**overrides: Any) -> RefreshTokenRotated:
    return RefreshTokenRotated(**{**_FAMILY, "next_jti": "j1", "rotated_at": 200, **overrides})


def revoke_family(**overrides: Any) -> RevokeFamily:
    return RevokeFamily(**{**_FAMILY, "reason": "revoked", "revoked_at": 300, **overrides})


def refresh_family_revoked(**overrides: Any) -> RefreshFamilyRevoked:
    fields = {**_FAMILY, "reason": "revoked", "revoked_at": 300}
    return RefreshFamilyRevoked(**{**fields, **overrides})


_CONSENT = {"issuer_id": "i_1", "user_id": "usr_1", "client_id": "c_1"}


def grant_consent(**overrides: Any) -> GrantConsent:
    return GrantConsent(**{**_CONSENT, "scopes": ["openid"], "at": 100, **overrides})


def consent_granted(**overrides: Any) -> UserConsentGranted:
    return UserConsentGranted(**{**_CONSENT, "scopes": ["openid"], "granted_at": 100, **overrides})


def revoke_consent(**overrides: Any) -> RevokeConsent:
    return RevokeConsent(**{**_CONSENT, "at": 200, **overrides})
