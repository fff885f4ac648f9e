"""What the TOTP verifier handlers share (handlers.verifiers, handlers.enrolments): the keys of
second factors and the counting of their failures.

- `TotpKeys`: a TOTP secret is sealed (AES-GCM) under a key derived from the KEK and bound to
  its user, so a sealed secret copied to another user's row does not open; backup codes are
  HMAC-SHA256 digests under another derived key, bound to their verifier.
- `FactorAttempts`: a refused code is `user.mfa.verification.failed` (an attempt stream of its
  own) and one failure of the user's second factor in the credential lockout, keyed
  `mfa:<user_id>` (idp-api.md 1.5: 5 failures lock it for 15 minutes); a trusted device that
  stood in for a code is `user.mfa.verification.succeeded`."""

from __future__ import annotations

from authpi.contracts.base import Meta
from authpi.crypto.clock import Clock
from authpi.crypto.envelope import Kek, seal, unseal
from authpi.crypto.ids import Ids
from authpi.token.caches.lockouts import Lockouts
from authpi.token.domain import totp_codes
from authpi.token.domain.credential_commands import RecordMfaAttempt
from authpi.token.handlers.credentials import Credentials
from authpi.token.handlers.user_lookup import Owner


def lockout_name(user_id: str) -> str:
    """The credential lockout's name for a user's second factor (caches.lockouts)."""
    return f"mfa:{user_id}"


class TotpKeys:
    def __init__(self, kek: Kek, ids: Ids) -> None:
        self.ids = ids
        self._secret_key = kek.derive("credential-totp")
        self._backup_key = kek.derive("credential-backup-codes")

    def new_secret(self) -> str:
        return totp_codes.new_secret(self.ids.secret(32))

    def seal(self, user_id: str, secret: str) -> str:
        return seal(self._secret_key, secret.encode(), _aad(user_id))

    def unseal(self, user_id: str, sealed: str) -> str:
        return unseal(self._secret_key, sealed, _aad(user_id)).decode()

    def new_backup_codes(self) -> list[str]:
        return [totp_codes.backup_code(self.ids.secret(32)) for _ in range(totp_codes.BACKUP_CODES)]

    def backup_digest(self, verifier_id: str, code: str) -> str:
        return totp_codes.backup_digest(self._backup_key, verifier_id, code)


def _aad(user_id: str) -> bytes:
    return f"totp:{user_id}".encode()


class FactorAttempts:
    def __init__(self, lockouts: Lockouts, attempts: Credentials, clock: Clock) -> None:
        self.lockouts = lockouts
        self.attempts = attempts
        self.clock = clock

    def locked(self, owner: Owner) -> bool:
        return bool(self.lockouts.retry_after(owner.issuer.id, lockout_name(owner.user.id)))

    async def refused(
        self, owner: Owner, verifier_id: str | None, kind: str, meta: Meta,
        reason: str = "invalid_code",
    ) -> str:  # fmt: skip
        """Record a refused code and count it; the error to answer (`locked` once it locks)."""
        await self.failed(owner, verifier_id, kind, reason, meta)
        locked = await self.lockouts.failed(owner.issuer.id, lockout_name(owner.user.id))
        return "locked" if locked else reason

    async def failed(
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

    async def passed(self, owner: Owner) -> None:
        await self.lockouts.succeeded(owner.issuer.id, lockout_name(owner.user.id))

    async def device_used(
        self, issuer_id: str, user_id: str, device_id: str, client_id: str | None, meta: Meta
    ) -> None:
        await self.attempts.record(
            RecordMfaAttempt(
                issuer_id=issuer_id, user_id=user_id, succeeded=True,
                factor_type="trusted_device", device_id=device_id, client_id=client_id,
                at=self.clock.now_ms(),
            ),
            meta,
        )  # fmt: skip
