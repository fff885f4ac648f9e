"""credentials_view: each user's password verifier (the sealed Argon2id hash) and whether its
email username is verified, an inline projection of the Credential aggregate, so the very next
sign-in, in any worker, checks the new password (and `email_verified` in ID tokens and userinfo
reads the new flag)."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.credentials import (
    PasswordRehashed,
    UserEmailVerified,
    UserPasswordChanged,
    UserPasswordReset,
    UserVerifierCreated,
)
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class CredentialsView:
    name = "token-credentials"
    event_types = (
        "user.verifier.created",
        "user.password.changed",
        "user.password.reset",
        "credential.password.rehashed",
        "user.email.verified",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._password = render(
            "INSERT INTO {schema}.credentials_view (user_id, issuer_id, verifier_id,"
            " password_hash, updated_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id)"
            " DO UPDATE SET verifier_id = excluded.verifier_id,"
            " password_hash = excluded.password_hash, updated_at = excluded.updated_at",
            schema=schema,
        )
        self._verified = render(
            "INSERT INTO {schema}.credentials_view (user_id, issuer_id, email_verified,"
            " updated_at) VALUES (%s, %s, true, %s) ON CONFLICT (user_id)"
            " DO UPDATE SET email_verified = true, updated_at = excluded.updated_at",
            schema=schema,
        )
        self._reset = render("TRUNCATE {schema}.credentials_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case UserVerifierCreated() as e if e.verifier_type != "password":
                return  # a second factor (projections.mfa), not the password
            case (
                UserVerifierCreated() | UserPasswordChanged() | UserPasswordReset()
                | PasswordRehashed()
            ) as e:  # fmt: skip
                await conn.execute(
                    self._password,
                    [e.user_id, e.issuer_id, e.verifier_id, e.sealed_hash, stored.recorded_at],
                )
            case UserEmailVerified() as e:
                await conn.execute(self._verified, [e.user_id, e.issuer_id, stored.recorded_at])
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
