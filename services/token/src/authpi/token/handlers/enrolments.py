"""TOTP enrolment (core-api.md 3.9 sub-resources; contract 4.25 create / complete-enrollment),
for the Core API and for the portal's set-up page alike: `start` keeps a new secret sealed in
`mfa_enrollments` for 10 minutes and shows it once (with its `otpauth://` URI); `complete`
checks a first code against it and creates the verifier, whose backup codes are shown this
once. One TOTP verifier per user (a reservation in the same transaction). The enrolment's code
counts towards the user's second-factor lockout like any other (handlers.mfa_support)."""

from __future__ import annotations

import msgspec
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Meta
from authpi.crypto.clock import Clock
from authpi.crypto.ids import Ids
from authpi.crypto.pii import Pii
from authpi.errors import Conflict, NotFound
from authpi.eventstore.store import EventStore, Tx
from authpi.token.domain import totp_codes, totp_verifier
from authpi.token.domain.mfa_commands import CreateTotpVerifier
from authpi.token.handlers.mfa_support import FactorAttempts, TotpKeys
from authpi.token.handlers.user_lookup import Owner
from authpi.token.portal.pages import branding
from authpi.token.queries.mfa import EnrollmentRow, MfaQueries
from authpi.token.queries.people import People
from authpi.web.etag import check_if_match, etag_of

ENROLLMENT_TTL_MS = 10 * 60 * 1000
TOTP_RESERVATION = "totp"  # one TOTP verifier per user


class Enrollment(msgspec.Struct, frozen=True, kw_only=True):
    enrollment_id: str
    secret: str
    provisioning_uri: str
    expires_at: int
    etag: str


class Completed(msgspec.Struct, frozen=True, kw_only=True):
    success: bool
    verifier_id: str | None = None
    backup_codes: list[str] | None = None
    error: str | None = None  # invalid_code | locked | expired


class Enrolments:
    def __init__(
        self,
        *,
        store: EventStore,
        pool: AsyncConnectionPool,
        queries: MfaQueries,
        people: People,
        keys: TotpKeys,
        attempts: FactorAttempts,
        clock: Clock,
        ids: Ids,
    ) -> None:
        self.store = store
        self.pool = pool
        self.queries = queries
        self.people = people
        self.keys = keys
        self.attempts = attempts
        self.clock = clock
        self.ids = ids

    async def start(self, owner: Owner, name: str) -> Enrollment:
        async with self.pool.connection() as conn:
            if await self.queries.verifiers(conn, owner.user.id):
                raise Conflict(
                    "the user already has a TOTP verifier; delete it to enrol another",
                    reason="verifier.totp_exists",
                )
            pii = await self.people.pii(conn, owner.user.id)
            secret = self.keys.new_secret()
            now = self.clock.now_ms()
            row = EnrollmentRow(
                id=self.ids.new("enr"), user_id=owner.user.id, issuer_id=owner.issuer.id,
                account_id=owner.issuer.account_id, name=name,
                sealed_secret=self.keys.seal(owner.user.id, secret), created_at=now,
                expires_at=now + ENROLLMENT_TTL_MS,
            )  # fmt: skip
            await self.queries.add_enrollment(conn, row)
        return self._shown(owner, row, secret, pii)

    async def resume(self, owner: Owner, enrollment_id: str) -> Enrollment | None:
        """A pending enrolment of the user shown again (the portal's page, reloaded), while it
        lasts."""
        async with self.pool.connection() as conn:
            row = await self.queries.enrollment(conn, enrollment_id)
            if row is None or row.user_id != owner.user.id:
                return None
            pii = await self.people.pii(conn, owner.user.id)
        if row.expires_at <= self.clock.now_ms():
            return None
        return self._shown(owner, row, self.keys.unseal(owner.user.id, row.sealed_secret), pii)

    def _shown(self, owner: Owner, row: EnrollmentRow, secret: str, pii: Pii | None) -> Enrollment:
        label = pii.username if pii is not None and pii.username else owner.user.id
        brand = branding(owner.issuer.name, owner.issuer.settings).name
        return Enrollment(
            enrollment_id=row.id, secret=secret,
            provisioning_uri=totp_codes.provisioning_uri(secret, label, brand),
            expires_at=row.expires_at, etag=etag_of(row.created_at, None),
        )  # fmt: skip

    async def complete(
        self, owner: Owner, enrollment_id: str, code: str, if_match: str | None, meta: Meta
    ) -> Completed:
        async with self.pool.connection() as conn:
            enrollment = await self.queries.enrollment(conn, enrollment_id)
        if enrollment is None or enrollment.user_id != owner.user.id:
            raise NotFound("no such enrollment", reason="enrollment.not_found")
        check_if_match(if_match, etag_of(enrollment.created_at, None))
        now = self.clock.now_ms()
        if enrollment.expires_at <= now:
            return Completed(success=False, error="expired")
        if self.attempts.locked(owner):
            await self.attempts.failed(owner, None, "totp", "locked", meta)
            return Completed(success=False, error="locked")
        user_id = owner.user.id
        secret = self.keys.unseal(user_id, enrollment.sealed_secret)
        step = totp_codes.matching_step(secret, code, now)
        if step is None:
            return Completed(
                success=False, error=await self.attempts.refused(owner, None, "totp", meta)
            )
        verifier_id = self.ids.new("vrf")
        codes = self.keys.new_backup_codes()
        cmd = CreateTotpVerifier(
            verifier_id=verifier_id, issuer_id=owner.issuer.id, user_id=user_id,
            name=enrollment.name, sealed_secret=self.keys.seal(user_id, secret), time_step=step,
            backup_codes=[self.keys.backup_digest(verifier_id, c) for c in codes], now=now,
        )  # fmt: skip

        async def claim(tx: Tx) -> None:
            await tx.reserve(TOTP_RESERVATION, user_id, verifier_id)
            await self.queries.end_enrollment(tx.conn, enrollment_id)

        try:
            await self.store.execute(verifier_id, totp_verifier, cmd, meta, [claim])
        except Conflict as exc:
            if exc.reason != f"reservation.{TOTP_RESERVATION}":
                raise
            raise Conflict(
                "the user already has a TOTP verifier", reason="verifier.totp_exists"
            ) from None
        await self.attempts.passed(owner)
        return Completed(success=True, verifier_id=verifier_id, backup_codes=codes)
