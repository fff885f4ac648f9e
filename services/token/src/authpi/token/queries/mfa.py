"""Read-side SQL of second factors over the token service's own tables: the verifiers and trusted
devices views, the ephemeral enrolments and portal challenges, and whether an organization the
user belongs to requires MFA (organizations_view, learnt from the directory's events)."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg.rows import class_row

from authpi.eventstore.sqltext import render

Conn = psycopg.AsyncConnection[Any]


class VerifierRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    user_id: str
    issuer_id: str
    account_id: str
    verifier_type: str
    name: str
    status: str
    sealed_secret: str
    algorithm: str
    digits: int
    period: int
    time_step: int
    backup_codes: list[str | None]
    last_used_at: int | None
    created_at: int
    updated_at: int | None

    @property
    def remaining(self) -> int:
        return sum(1 for c in self.backup_codes if c is not None)


class DeviceRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    user_id: str
    issuer_id: str
    account_id: str
    fingerprint: str
    name: str | None
    user_agent: str | None
    token_sha256: str | None
    trusted_at: int
    expires_at: int
    last_used_at: int | None


class EnrollmentRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    user_id: str
    issuer_id: str
    account_id: str
    name: str
    sealed_secret: str
    created_at: int
    expires_at: int


class ChallengeRow(msgspec.Struct, frozen=True, kw_only=True):
    id_sha256: str
    issuer_id: str
    user_id: str
    flow_id: str | None
    method: str
    created_at: int
    expires_at: int
    enrollment_id: str | None = None  # the enrolment shown to a user who must enrol first
    passed: str | None = None  # the factor that passed (an enrolment's first code)


_VERIFIER = (
    "id, user_id, issuer_id, account_id, verifier_type, name, status, sealed_secret, algorithm,"
    " digits, period, time_step, backup_codes, last_used_at, created_at, updated_at"
)
_DEVICE = (
    "id, user_id, issuer_id, account_id, fingerprint, name, user_agent, token_sha256,"
    " trusted_at, expires_at, last_used_at"
)


class MfaQueries:
    def __init__(self, schema: str) -> None:
        self._verifiers = render(
            f"SELECT {_VERIFIER} FROM {{schema}}.mfa_verifiers_view WHERE user_id = %s"
            " ORDER BY created_at, id",
            schema=schema,
        )
        self._verifier = render(
            f"SELECT {_VERIFIER} FROM {{schema}}.mfa_verifiers_view WHERE id = %s", schema=schema
        )
        self._devices = render(
            f"SELECT {_DEVICE} FROM {{schema}}.trusted_devices_view WHERE user_id = %s"
            " AND expires_at > %s ORDER BY trusted_at DESC, id",
            schema=schema,
        )
        self._device = render(
            f"SELECT {_DEVICE} FROM {{schema}}.trusted_devices_view WHERE id = %s", schema=schema
        )
        self._org_requires = render(
            "SELECT EXISTS (SELECT 1 FROM {schema}.memberships_view m"
            " JOIN {schema}.organizations_view o ON o.id = m.org_id"
            " WHERE m.member_id = %s AND m.status = 'active' AND o.status = 'active'"
            " AND o.mfa_required)",
            schema=schema,
        )
        self._enroll = render(
            "INSERT INTO {schema}.mfa_enrollments (id, user_id, issuer_id, account_id, name,"
            " sealed_secret, created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            schema=schema,
        )
        self._enrollment = render(
            "SELECT id, user_id, issuer_id, account_id, name, sealed_secret, created_at,"
            " expires_at FROM {schema}.mfa_enrollments WHERE id = %s",
            schema=schema,
        )
        self._enrollment_done = render(
            "DELETE FROM {schema}.mfa_enrollments WHERE id = %s", schema=schema
        )
        self._challenge = render(
            "INSERT INTO {schema}.mfa_challenges (id_sha256, issuer_id, user_id, flow_id, method,"
            " created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            schema=schema,
        )
        self._challenge_of = render(
            "SELECT id_sha256, issuer_id, user_id, flow_id, method, created_at, expires_at,"
            " enrollment_id, passed FROM {schema}.mfa_challenges WHERE id_sha256 = %s",
            schema=schema,
        )
        self._challenge_enrollment = render(
            "UPDATE {schema}.mfa_challenges SET enrollment_id = %s WHERE id_sha256 = %s",
            schema=schema,
        )
        self._challenge_passed = render(
            "UPDATE {schema}.mfa_challenges SET passed = %s WHERE id_sha256 = %s", schema=schema
        )
        self._challenge_done = render(
            "DELETE FROM {schema}.mfa_challenges WHERE id_sha256 = %s", schema=schema
        )

    async def verifiers(self, conn: Conn, user_id: str) -> list[VerifierRow]:
        cur = conn.cursor(row_factory=class_row(VerifierRow))
        await cur.execute(self._verifiers, [user_id])
        return await cur.fetchall()

    async def verifier(self, conn: Conn, verifier_id: str) -> VerifierRow | None:
        cur = conn.cursor(row_factory=class_row(VerifierRow))
        await cur.execute(self._verifier, [verifier_id])
        return await cur.fetchone()

    async def devices(self, conn: Conn, user_id: str, now: int) -> list[DeviceRow]:
        """The user's devices that are trusted now (not revoked, not expired)."""
        cur = conn.cursor(row_factory=class_row(DeviceRow))
        await cur.execute(self._devices, [user_id, now])
        return await cur.fetchall()

    async def device(self, conn: Conn, device_id: str) -> DeviceRow | None:
        cur = conn.cursor(row_factory=class_row(DeviceRow))
        await cur.execute(self._device, [device_id])
        return await cur.fetchone()

    async def organization_requires(self, conn: Conn, user_id: str) -> bool:
        """Whether an active organization the user is an active member of requires MFA."""
        cur = await conn.execute(self._org_requires, [user_id])
        row = await cur.fetchone()
        return bool(row and row[0])

    async def add_enrollment(self, conn: Conn, row: EnrollmentRow) -> None:
        await conn.execute(
            self._enroll,
            [row.id, row.user_id, row.issuer_id, row.account_id, row.name, row.sealed_secret,
             row.created_at, row.expires_at],
        )  # fmt: skip

    async def enrollment(self, conn: Conn, enrollment_id: str) -> EnrollmentRow | None:
        cur = conn.cursor(row_factory=class_row(EnrollmentRow))
        await cur.execute(self._enrollment, [enrollment_id])
        return await cur.fetchone()

    async def end_enrollment(self, conn: Conn, enrollment_id: str) -> None:
        await conn.execute(self._enrollment_done, [enrollment_id])

    async def add_challenge(self, conn: Conn, row: ChallengeRow) -> None:
        await conn.execute(
            self._challenge,
            [row.id_sha256, row.issuer_id, row.user_id, row.flow_id, row.method, row.created_at,
             row.expires_at],
        )  # fmt: skip

    async def challenge(self, conn: Conn, id_sha256: str) -> ChallengeRow | None:
        cur = conn.cursor(row_factory=class_row(ChallengeRow))
        await cur.execute(self._challenge_of, [id_sha256])
        return await cur.fetchone()

    async def challenge_enrollment(self, conn: Conn, id_sha256: str, enrollment_id: str) -> None:
        await conn.execute(self._challenge_enrollment, [enrollment_id, id_sha256])

    async def challenge_passed(self, conn: Conn, id_sha256: str, factor: str) -> None:
        await conn.execute(self._challenge_passed, [factor, id_sha256])

    async def end_challenge(self, conn: Conn, id_sha256: str) -> bool:
        """Use the challenge up; False when another request already did."""
        cur = await conn.execute(self._challenge_done, [id_sha256])
        return cur.rowcount == 1
