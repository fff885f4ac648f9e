"""User verifiers (core-api.md 3.9 sub-resources; contract 4.25): reads, rename/disable, delete,
backup-code regeneration, and checking a code, for the Core API and for the hosted portal's
second-factor challenge alike (enrolment: handlers.enrolments).

- A code is checked against the verifier's stream (domain.totp_verifier): the TOTP step or the
  backup code is used up in the same append that accepts it.
- Failed codes lock the user's second factor after 5 failures for 15 minutes (idp-api.md 1.5,
  handlers.mfa_support); a locked factor refuses even the right code and answers `locked`,
  never a 429. Each failure is `user.mfa.verification.failed`."""

from __future__ import annotations

import msgspec
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Meta
from authpi.crypto.clock import Clock
from authpi.errors import NotFound
from authpi.eventstore.store import EventStore, Tx
from authpi.token.domain import totp_codes, totp_verifier
from authpi.token.domain.mfa_commands import (
    DeleteVerifier,
    RegenerateBackupCodes,
    UpdateVerifier,
    UseBackupCode,
    UseTotpCode,
    VerifierCommand,
)
from authpi.token.domain.totp_verifier import CodeRefused
from authpi.token.handlers.enrolments import TOTP_RESERVATION
from authpi.token.handlers.mfa_support import FactorAttempts, TotpKeys
from authpi.token.handlers.user_lookup import Owner
from authpi.token.queries.mfa import MfaQueries, VerifierRow
from authpi.web.etag import check_if_match, etag_of


class Checked(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a code: `error` is invalid_code | code_reused | locked."""

    success: bool
    factor_type: str  # totp | backup_code
    remaining: int | None = None
    error: str | None = None


def verifier_etag(row: VerifierRow) -> str:
    return etag_of(row.created_at, row.updated_at)


class Verifiers:
    def __init__(
        self,
        *,
        store: EventStore,
        pool: AsyncConnectionPool,
        queries: MfaQueries,
        keys: TotpKeys,
        attempts: FactorAttempts,
        clock: Clock,
    ) -> None:
        self.store = store
        self.pool = pool
        self.queries = queries
        self.keys = keys
        self.attempts = attempts
        self.clock = clock

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
        codes = self.keys.new_backup_codes()
        cmd = RegenerateBackupCodes(
            verifier_id=verifier_id, user_id=owner.user.id,
            backup_codes=[self.keys.backup_digest(verifier_id, c) for c in codes],
            if_match=if_match, now=self.clock.now_ms(),
        )  # fmt: skip
        await self._execute(verifier_id, cmd, meta)
        return await self.get(owner, verifier_id), codes

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
        if self.attempts.locked(owner):
            await self.attempts.failed(owner, verifier.id, kind, "locked", meta)
            return Checked(success=False, error="locked", factor_type=kind)
        cmd = self._use(verifier, kind, code, client_id)
        try:
            if cmd is None:
                raise CodeRefused("the code is not valid", reason="mfa.invalid_code")
            outcome = await self.store.execute(verifier.id, totp_verifier, cmd, meta)
        except CodeRefused as exc:
            reason = "code_reused" if exc.reason == "mfa.code_reused" else "invalid_code"
            error = await self.attempts.refused(owner, verifier.id, kind, meta, reason)
            return Checked(success=False, error=error, factor_type=kind)
        await self.attempts.passed(owner)
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
            secret = self.keys.unseal(verifier.user_id, verifier.sealed_secret)
            step = totp_codes.matching_step(
                secret, code, now, digits=verifier.digits, period_s=verifier.period
            )
            return None if step is None else UseTotpCode(time_step=step, **common)
        if not totp_codes.normalise_backup_code(code):
            return None
        return UseBackupCode(digest=self.keys.backup_digest(verifier.id, code), **common)

    async def _execute(self, verifier_id: str, cmd: VerifierCommand, meta: Meta) -> None:
        await self.store.execute(verifier_id, totp_verifier, cmd, meta)
