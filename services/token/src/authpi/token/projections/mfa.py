"""mfa_verifiers_view and trusted_devices_view: inline projections of the TOTP verifiers' and the
trusted devices' events, applied in the write transaction, so the very next sign-in (in any
worker) challenges a verifier just enrolled through the Core API, refuses a code just used and
stops honouring a device just revoked."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.mfa import (
    UserDeviceRevoked,
    UserDeviceTrusted,
    UserMfaBackupCodesRegenerated,
    UserMfaFactorCreated,
    UserMfaVerificationSucceeded,
    UserVerifierDeleted,
    UserVerifierUpdated,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class MfaVerifiersView:
    name = "token-mfa-verifiers"
    event_types = (
        "user.mfa.factor-created",
        "user.verifier.updated",
        "user.verifier.deleted",
        "user.mfa.backup-codes.regenerated",
        "user.mfa.verification.succeeded",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema  # `authpi replay` locks and rebuilds by it
        self._insert = render(
            "INSERT INTO {schema}.mfa_verifiers_view (id, user_id, issuer_id, account_id,"
            " verifier_type, name, status, sealed_secret, algorithm, digits, period, time_step,"
            " backup_codes, created_at) VALUES (%s, %s, %s, %s, %s, %s, 'active', %s, %s, %s,"
            " %s, %s, %s::jsonb, %s) ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._update = render(
            "UPDATE {schema}.mfa_verifiers_view SET name = coalesce(%s, name),"
            " status = coalesce(%s, status), updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._codes = render(
            "UPDATE {schema}.mfa_verifiers_view SET backup_codes = %s::jsonb, updated_at = %s"
            " WHERE id = %s",
            schema=schema,
        )
        # A TOTP step moves forward only; a used backup code becomes null where it was.
        self._used = render(
            "UPDATE {schema}.mfa_verifiers_view SET"
            " time_step = greatest(time_step, coalesce(%(step)s, time_step)),"
            " backup_codes = CASE WHEN %(index)s::int IS NULL THEN backup_codes"
            " ELSE jsonb_set(backup_codes, ARRAY[%(index)s::text], 'null'::jsonb) END,"
            " last_used_at = %(at)s, updated_at = %(at)s WHERE id = %(id)s",
            schema=schema,
        )
        self._delete = render(
            "DELETE FROM {schema}.mfa_verifiers_view WHERE id = %s", schema=schema
        )
        self._reset = render("TRUNCATE {schema}.mfa_verifiers_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case UserMfaFactorCreated() as e:
                await conn.execute(
                    self._insert,
                    [e.verifier_id, e.user_id, e.issuer_id, stored.meta.account_id,
                     e.factor_type, e.name, e.sealed_secret, e.algorithm, e.digits, e.period,
                     e.time_step, jsonb.dumps(e.backup_codes), e.created_at],
                )  # fmt: skip
            case UserVerifierUpdated() as e:
                await conn.execute(self._update, [e.name, e.status, e.updated_at, e.verifier_id])
            case UserMfaBackupCodesRegenerated() as e:
                await conn.execute(
                    self._codes, [jsonb.dumps(e.backup_codes), e.regenerated_at, e.verifier_id]
                )
            case UserMfaVerificationSucceeded() as e if e.verifier_id is not None:
                await conn.execute(
                    self._used,
                    {"step": e.time_step, "index": e.backup_code, "at": e.at,
                     "id": e.verifier_id},
                )  # fmt: skip
            case UserVerifierDeleted() as e:
                await conn.execute(self._delete, [e.verifier_id])
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)


class TrustedDevicesView:
    name = "token-trusted-devices"
    event_types = ("user.device.trusted", "user.device.revoked", "user.mfa.verification.succeeded")

    def __init__(self, schema: str) -> None:
        self.schema = schema  # `authpi replay` locks and rebuilds by it
        self._insert = render(
            "INSERT INTO {schema}.trusted_devices_view (id, user_id, issuer_id, account_id,"
            " fingerprint, name, user_agent, token_sha256, trusted_at, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._delete = render(
            "DELETE FROM {schema}.trusted_devices_view WHERE user_id = %s AND id = ANY(%s)",
            schema=schema,
        )
        self._used = render(
            "UPDATE {schema}.trusted_devices_view SET last_used_at = %s WHERE id = %s",
            schema=schema,
        )
        self._reset = render("TRUNCATE {schema}.trusted_devices_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case UserDeviceTrusted() as e:
                await conn.execute(
                    self._insert,
                    [e.device_id, e.user_id, e.issuer_id, stored.meta.account_id, e.fingerprint,
                     e.name, e.user_agent, e.token_sha256, e.trusted_at, e.expires_at],
                )  # fmt: skip
            case UserDeviceRevoked() as e:
                await conn.execute(self._delete, [e.user_id, e.device_ids])
            case UserMfaVerificationSucceeded() as e if e.device_id is not None:
                await conn.execute(self._used, [e.at, e.device_id])
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
