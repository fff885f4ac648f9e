"""When a sign-in needs a second factor (idp-api.md 12.6), and the challenge that asks for it.

A user needs one when they have an enabled TOTP verifier, when their issuer's
`settings.security.mfa_required` is true, or when an active organization they are an active
member of has `security.mfa_required` (core-api.md 3.12). Then, after the password (or a login
link), the sign-in either passes on a device the user trusted for this issuer (its cookie,
handlers.trusted_devices), or waits on a challenge: an ephemeral row known by the digest of a
random secret in the `authpi_mfa` cookie, bound to the user, the issuer and the authorization,
used once and gone after 10 minutes. A user whom a policy requires a second factor of, and who
has none, enrols one on the challenge page first (portal.mfa); one whose only verifier is
disabled cannot finish signing in.

An op session records how it was authenticated: `<primary>+totp`, `+backup_code` or
`+trusted_device` when a second factor passed. One opened without (before the user enrolled, or
before a policy required it) does not carry the user past the requirement at /authorize."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Meta
from authpi.crypto.clock import Clock
from authpi.crypto.ids import Ids, sha256_hex
from authpi.token.handlers.enrolments import Enrolments
from authpi.token.handlers.trusted_devices import TrustedDevices
from authpi.token.handlers.user_lookup import UserLookup
from authpi.token.handlers.verifiers import Verifiers
from authpi.token.queries.mfa import ChallengeRow, MfaQueries, VerifierRow
from authpi.token.queries.portal import IssuerRow

CHALLENGE_COOKIE = "authpi_mfa"
DEVICE_COOKIE = "authpi_device"
CHALLENGE_TTL_MS = 10 * 60 * 1000
SECOND_FACTORS = ("totp", "backup_code", "trusted_device")


class Passed(msgspec.Struct, frozen=True):
    """Sign in now, the session authenticated with `method`."""

    method: str


class Challenged(msgspec.Struct, frozen=True):
    """Ask for a code (or an enrolment) on the challenge page; `cookie` is the challenge's."""

    cookie: str


Gate = Passed | Challenged


def issuer_requires_mfa(settings: Mapping[str, Any]) -> bool:
    """settings.security.mfa_required (the directory accepts only a boolean there)."""
    security = settings.get("security")
    return isinstance(security, Mapping) and security.get("mfa_required") is True


def second_factor_passed(auth_method: str) -> bool:
    return auth_method.rpartition("+")[2] in SECOND_FACTORS


class SecondFactor:
    def __init__(
        self,
        *,
        pool: AsyncConnectionPool,
        queries: MfaQueries,
        lookup: UserLookup,
        verifiers: Verifiers,
        enrolments: Enrolments,
        devices: TrustedDevices,
        clock: Clock,
        ids: Ids,
    ) -> None:
        self.pool = pool
        self.queries = queries
        self.lookup = lookup
        self.verifiers = verifiers
        self.enrolments = enrolments
        self.devices = devices
        self.clock = clock
        self.ids = ids

    async def requirement(
        self, settings: Mapping[str, Any], user_id: str
    ) -> tuple[bool, VerifierRow | None]:
        """Whether the user must pass a second factor, and the verifier that can."""
        verifier = await self.verifiers.active_totp(user_id)
        if verifier is not None or issuer_requires_mfa(settings):
            return True, verifier
        async with self.pool.connection() as conn:
            return await self.queries.organization_requires(conn, user_id), None

    async def gate(
        self,
        issuer: IssuerRow,
        user_id: str,
        method: str,
        *,
        flow_id: str | None,
        client_id: str | None,
        device_cookie: str | None,
        meta: Meta,
    ) -> Gate:
        required, _ = await self.requirement(issuer.settings, user_id)
        if not required:
            return Passed(method)
        device_id = await self.devices.recognised(issuer.id, user_id, device_cookie)
        if device_id is not None:
            await self.verifiers.attempts.device_used(
                issuer.id, user_id, device_id, client_id, meta
            )
            return Passed(f"{method}+trusted_device")
        secret = self.ids.secret(32)
        now = self.clock.now_ms()
        async with self.pool.connection() as conn:
            await self.queries.add_challenge(
                conn,
                ChallengeRow(
                    id_sha256=sha256_hex(secret), issuer_id=issuer.id, user_id=user_id,
                    flow_id=flow_id, method=method, created_at=now,
                    expires_at=now + CHALLENGE_TTL_MS,
                ),
            )  # fmt: skip
        return Challenged(secret)

    async def challenge(
        self, issuer_id: str, flow_id: str | None, cookie: str | None
    ) -> ChallengeRow | None:
        """The challenge this browser is answering for this issuer and authorization, while it
        lasts."""
        if not cookie or len(cookie) > 128:
            return None
        async with self.pool.connection() as conn:
            row = await self.queries.challenge(conn, sha256_hex(cookie))
        if (
            row is None
            or row.issuer_id != issuer_id
            or row.flow_id != flow_id
            or row.expires_at <= self.clock.now_ms()
        ):
            return None
        return row

    async def showed(self, row: ChallengeRow, enrollment_id: str) -> None:
        """The challenge page showed this enrolment to the user."""
        async with self.pool.connection() as conn:
            await self.queries.challenge_enrollment(conn, row.id_sha256, enrollment_id)

    async def passed(self, row: ChallengeRow, factor: str) -> None:
        """A factor passed, to be used by the next step of the same challenge."""
        async with self.pool.connection() as conn:
            await self.queries.challenge_passed(conn, row.id_sha256, factor)

    async def finish(self, row: ChallengeRow) -> bool:
        """Use the challenge up; False when another request already did."""
        async with self.pool.connection() as conn:
            return await self.queries.end_challenge(conn, row.id_sha256)

    async def satisfied(self, issuer_id: str, user_id: str, auth_method: str) -> bool:
        """Whether an op session authenticated with `auth_method` may carry the user into an
        authorization now (endpoints.interactions)."""
        if second_factor_passed(auth_method):
            return True
        issuer = await self.lookup.issuer(issuer_id)
        if issuer is None:
            return True  # an unknown issuer was refused before this
        required, _ = await self.requirement(issuer.settings, user_id)
        return not required
