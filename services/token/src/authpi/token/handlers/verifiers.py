"""User verifiers (core-api.md 3.9 sub-resources; contract 4.25): TOTP enrolment in two steps,
reads, rename/disable, delete, backup-code regeneration, and checking a code, for the Core API
and for the hosted portal's second-factor challenge alike.

- Enrolment: `start` keeps the new secret sealed in `mfa_enrollments` for 10 minutes and shows
  it once; `complete` checks a first code against it and creates the verifier (one TOTP
  verifier per user, a reservation), whose backup codes are shown this once.
- A code is checked against the verifier's stream (domain.totp_verifier): the TOTP step or the
  backup code is used up in the same append that accepts it.
- Failed codes lock the user's second factor after 5 failures for 15 minutes (idp-api.md 1.5,
  the credential lockout keyed by `mfa:<user_id>`); a locked factor refuses even the right code
  and answers `locked`, never a 429. Each failure is `user.mfa.verification.failed`."""

from __future__ import annotations

import msgspec
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Meta
from authpi.crypto.clock import Clock
from authpi.crypto.envelope import Kek, seal, unseal
from authpi.crypto.ids import Ids
from authpi.crypto.pii import Pii
from authpi.errors import Conflict, NotFound
from authpi.eventstore.store import EventStore, Tx
from authpi.token.caches.lockouts import Lockouts
from authpi.token.domain import totp_codes, totp_verifier
from authpi.token.domain.credential_commands import RecordMfaAttempt
from authpi.token.domain.mfa_commands import (
    CreateTotpVerifier,
    DeleteVerifier,
    RegenerateBackupCodes,
    UpdateVerifier,
    UseBackupCode,
    UseTotpCode,
    VerifierCommand,
)
from authpi.token.domain.totp_verifier import CodeRefused
from authpi.token.handlers.credentials import Credentials
from authpi.token.handlers.user_lookup import Owner
from authpi.token.portal.pages import branding
from authpi.token.queries.mfa import EnrollmentRow, MfaQueries, VerifierRow
from authpi.token.queries.people import People
from authpi.web.etag import check_if_match, etag_of

ENROLLMENT_TTL_MS = 10 * 60 * 1000
TOTP_RESERVATION = "totp"  # one TOTP verifier per user
KINDS = ("totp", "backup_code")


class Enrollment(msgspec.Struct, frozen=True, kw_only=True):
    enrollment_id: str
    secret: str
    provisioning_uri: str
    expires_at: int
    etag: str


class Completed(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    success: bool
    verifier_id: str | None = None
    backup_codes: list[str] | None = None
    error: str | None = None


class Checked(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The answer to a code: `error` is invalid_code | code_reused | locked | expired."""

    success: bool
    remaining: int | None = None
    error: str | None = None
    factor_type: str | None = None


def lockout_name(user_id: str) -> str:
    """The credential lockout's name for a user's second factor (caches.lockouts)."""
    return f"mfa:{user_id}"


def verifier_etag(row: VerifierRow) -> str:
    return etag_of(row.created_at, row.updated_at)


class Verifiers:
    def __init__(
        self,
        *,
        store: EventStore,
        pool: AsyncConnectionPool,
        queries: MfaQueries,
        people: People,
        lockouts: Lockouts,
        attempts: Credentials,
        clock: Clock,
        ids: Ids,
        kek: Kek,
    ) -> None:
        self.store = store
        self.pool = pool
        self.queries = queries
        self.people = people
        self.lockouts = lockouts
        self.attempts = attempts
        self.clock = clock
        self.ids = ids
        self._secret_key = kek.derive("credential-totp")
        self._backup_key = kek.derive("credential-backup-codes")

    # Reads

    async def list(self, owner: Owner) -> list[VerifierRow]:
        async with self.pool.connection() as conn:
            return await self.queries.verifiers(conn, owner.user.id)

    async def get(self, owner: Owner, verifier_id: str) -> VerifierRow:
        async with self.pool.connection() as conn:
            row = await self.queries.verifier(conn, verifier_id)
        if row is None or row.user_id != owner.user.id:
            raise NotFound("no such verifier", reason="verifier.not_found")
        return row

    async def active_totp(self, user_id: str) -> VerifierRow | None:
        """The user's TOTP verifier, when it is enabled (what the portal challenges)."""
        async with self.pool.connection() as conn:
            rows = await self.queries.verifiers(conn, user_id)
        return next((r for r in rows if r.status == "active"), None)

    # Enrolment

    async def start(self, owner: Owner, name: str) -> Enrollment:
        async with self.pool.connection() as conn:
            if await self.queries.verifiers(conn, owner.user.id):
                raise Conflict(
                    "the user already has a TOTP verifier; delete it to enrol another",
                    reason="verifier.totp_exists",
                )
            pii = await self.people.pii(conn, owner.user.id)
            secret = totp_codes.new_secret(self.ids.secret(32))
            now = self.clock.now_ms()
            row = EnrollmentRow(
                id=self.ids.new("enr"), user_id=owner.user.id, issuer_id=owner.issuer.id,
                account_id=owner.issuer.account_id, name=name,
                sealed_secret=self._seal(owner.user.id, secret), created_at=now,
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
        return self._shown(owner, row, self._unseal(owner.user.id, row.sealed_secret), pii)

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
        issuer_id, user_id = owner.issuer.id, owner.user.id
        if self.lockouts.retry_after(issuer_id, lockout_name(user_id)):
            await self._failed(owner, None, "totp", "locked", meta)
            return Completed(success=False, error="locked")
        secret = self._unseal(user_id, enrollment.sealed_secret)
        step = totp_codes.matching_step(secret, code, now)
        if step is None:
            return Completed(success=False, error=await self._refused(owner, None, "totp", meta))
        verifier_id = self.ids.new("vrf")
        codes = self._new_backup_codes()
        cmd = CreateTotpVerifier(
            verifier_id=verifier_id, issuer_id=issuer_id, user_id=user_id, name=enrollment.name,
            sealed_secret=self._seal(user_id, secret), time_step=step,
            backup_codes=[self._backup_digest(verifier_id, c) for c in codes], now=now,
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
        await self.lockouts.succeeded(issuer_id, lockout_name(user_id))
        return Completed(success=True, verifier_id=verifier_id, backup_codes=codes)

    # Changes

    async def update(
        self, owner: Owner, verifier_id: str, name: str | None, status: str | None,
        if_match: str | None, meta: Meta,
    ) -> VerifierRow:  # fmt: skip
        await self.get(owner, verifier_id)
        cmd = UpdateVerifier(
            verifier_id=verifier_id, user_id=owner.user.id, name=name, status=status,
            if_match=if_match, now=self.clock.now_ms(),
        )  # fmt: skip
        await self._execute(verifier_id, cmd, meta)
        return await self.get(owner, verifier_id)

    async def delete(
        self, owner: Owner, verifier_id: str, if_match: str | None, meta: Meta
    ) -> None:
        await self.get(owner, verifier_id)
        cmd = DeleteVerifier(
            verifier_id=verifier_id, user_id=owner.user.id, if_match=if_match,
            now=self.clock.now_ms(),
        )  # fmt: skip

        async def release(tx: Tx) -> None:
            await tx.release(TOTP_RESERVATION, owner.user.id, verifier_id)

        await self.store.execute(verifier_id, totp_verifier, cmd, meta, [release])

    async def regenerate(
        self, owner: Owner, verifier_id: str, if_match: str | None, meta: Meta
    ) -> tuple[VerifierRow, list[str]]:
        await self.get(owner, verifier_id)
        codes = self._new_backup_codes()
        cmd = RegenerateBackupCodes(
            verifier_id=verifier_id, user_id=owner.user.id,
            backup_codes=[self._backup_digest(verifier_id, c) for c in codes],
            if_match=if_match, now=self.clock.now_ms(),
        )  # fmt: skip
        await self._execute(verifier_id, cmd, meta)
        return await self.get(owner, verifier_id), codes

    # Checking a code

    async def check(
        self,
        owner: Owner,
        verifier: VerifierRow,
        code: str,
        meta: Meta,
        *,
        kind: str | None = None,
        if_match: str | None = None,
        client_id: str | None = None,
    ) -> Checked:
        """Check `code` (a TOTP code or, by its shape or `kind`, a backup code) and use it up."""
        check_if_match(if_match, verifier_etag(verifier))
        kind = kind or (
            "totp" if totp_codes.looks_like_totp(code, verifier.digits) else "backup_code"
        )
        issuer_id, user_id = owner.issuer.id, owner.user.id
        if self.lockouts.retry_after(issuer_id, lockout_name(user_id)):
            await self._failed(owner, verifier.id, kind, "locked", meta)
            return Checked(success=False, error="locked", factor_type=kind)
        cmd = self._use(verifier, kind, code, client_id)
        try:
            if cmd is None:
                raise CodeRefused("the code is not valid", reason="mfa.invalid_code")
            outcome = await self.store.execute(verifier.id, totp_verifier, cmd, meta)
        except CodeRefused as exc:
            reason = "code_reused" if exc.reason == "mfa.code_reused" else "invalid_code"
            error = await self._refused(owner, verifier.id, kind, meta, reason)
            return Checked(success=False, error=error, factor_type=kind)
        await self.lockouts.succeeded(issuer_id, lockout_name(user_id))
        state = outcome.state
        remaining = state.remaining if isinstance(state, totp_verifier.Live) else None
        return Checked(success=True, remaining=remaining, factor_type=kind)

    def _use(
        self, verifier: VerifierRow, kind: str, code: str, client_id: str | None
    ) -> VerifierCommand | None:
        now = self.clock.now_ms()
        common = {"verifier_id": verifier.id, "user_id": verifier.user_id, "client_id": client_id,
                  "now": now}  # fmt: skip
        if kind == "totp":
            secret = self._unseal(verifier.user_id, verifier.sealed_secret)
            step = totp_codes.matching_step(
                secret, code, now, digits=verifier.digits, period_s=verifier.period
            )
            return None if step is None else UseTotpCode(time_step=step, **common)
        if not totp_codes.normalise_backup_code(code):
            return None
        return UseBackupCode(digest=self._backup_digest(verifier.id, code), **common)

    async def _refused(
        self, owner: Owner, verifier_id: str | None, kind: str, meta: Meta,
        reason: str = "invalid_code",
    ) -> str:  # fmt: skip
        """Record a refused code and count it; the error to answer (`locked` once it locks)."""
        await self._failed(owner, verifier_id, kind, reason, meta)
        locked = await self.lockouts.failed(owner.issuer.id, lockout_name(owner.user.id))
        return "locked" if locked else reason

    async def _failed(
        self, owner: Owner, verifier_id: str | None, kind: str, reason: str, meta: Meta
    ) -> None:
        await self.attempts.record(
            RecordMfaAttempt(
                issuer_id=owner.issuer.id, user_id=owner.user.id, succeeded=False,
                factor_type=kind, reason=reason, verifier_id=verifier_id,
                at=self.clock.now_ms(),
            ),
            meta,
        )  # fmt: skip

    async def _execute(self, verifier_id: str, cmd: VerifierCommand, meta: Meta) -> None:
        await self.store.execute(verifier_id, totp_verifier, cmd, meta)

    def _new_backup_codes(self) -> list[str]:
        return [totp_codes.backup_code(self.ids.secret(32)) for _ in range(totp_codes.BACKUP_CODES)]

    def _backup_digest(self, verifier_id: str, code: str) -> str:
        return totp_codes.backup_digest(self._backup_key, verifier_id, code)

    def _seal(self, user_id: str, secret: str) -> str:
        return seal(self._secret_key, secret.encode(), _aad(user_id))

    def _unseal(self, user_id: str, sealed: str) -> str:
        return unseal(self._secret_key, sealed, _aad(user_id)).decode()


def _aad(user_id: str) -> bytes:
    """The sealed secret is bound to its user: a secret copied to another user's row fails."""
    return f"totp:{user_id}".encode()
