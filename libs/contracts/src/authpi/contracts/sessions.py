"""Events of the token service's human-login aggregates: Session (op and rp; core-api.md 3.11,
idp-api.md 11.1), RefreshTokenFamily (idp-api.md 5.4, 12.3) and Consent (idp-api.md 9).

`session.*` and `user.consent.*` are the spec's catalogue names (platform.md 6.3). The refresh
family's events (`refresh-family.started`, `refresh-token.rotated`, `refresh-family.revoked`)
are internal to the token service, like `access-token.revoked`: the spec's catalogue has no
such events (a refresh is reported by the `session.token-refreshed` fact), so they are never
delivered to webhooks. None of them carries a token value; a refresh token is tracked by its
`jti` only."""

from __future__ import annotations

import msgspec

from authpi.contracts.base import Event


class Device(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    user_agent: str | None = None
    ip: str | None = None


class Authentication(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    method: str  # password | login_link | sso | ...
    authenticated_at: int  # Unix ms: the user's actual authentication (ID token auth_time)


class SessionCreated(Event, frozen=True, kw_only=True, tag="session.created"):
    """A login opened an op session, or a code exchange an rp session (status `active`)."""

    session_id: str
    issuer_id: str
    account_id: str
    user_id: str
    session_type: str  # op | rp (`type` is the event's tag)
    client_id: str | None = None  # rp only
    op_session_id: str | None = None  # rp only: its op session
    status: str = "active"
    authentication: Authentication
    device: Device = Device()
    location: dict[str, str] | None = None
    idle_timeout: int  # seconds
    expires_at: int  # Unix ms, absolute
    # op only: SHA-256 (hex) of the browser cookie's secret; never in the Core API's answers.
    cookie_sha256: str | None = None
    created_at: int


class SessionUpdated(Event, frozen=True, kw_only=True, tag="session.updated"):
    """Suspended or reactivated by an administrator."""

    session_id: str
    issuer_id: str
    user_id: str
    client_id: str | None = None
    status: str  # suspended | active
    changed: list[str]
    status_reason: str | None = None
    status_by: str | None = None
    updated_at: int


class SessionTerminated(Event, frozen=True, kw_only=True, tag="session.terminated"):
    session_id: str
    issuer_id: str
    user_id: str
    client_id: str | None = None
    revoked_reason: str  # logout | admin | cascade | compromised | consent_revoked
    status_by: str | None = None
    cascade_from: str | None = None  # the op session whose revocation ended this rp session
    revoked_at: int


class SessionExpired(Event, frozen=True, kw_only=True, tag="session.expired"):
    session_id: str
    issuer_id: str
    user_id: str
    client_id: str | None = None
    reason: str  # max_age | idle | evicted
    expired_at: int


class SessionCompromised(Event, frozen=True, kw_only=True, tag="session.compromised"):
    """A refresh token (or an authorization code) of this session was presented twice."""

    session_id: str
    issuer_id: str
    user_id: str
    client_id: str | None = None
    compromised_reason: str  # refresh_token_reuse | code_reuse
    jti: str | None = None
    compromised_at: int


class RefreshFamilyStarted(Event, frozen=True, kw_only=True, tag="refresh-family.started"):
    """A code exchange issued the first refresh token of a family (stream of its jti)."""

    family_id: str
    issuer_id: str
    client_id: str
    user_id: str
    session_id: str  # the rp session
    jti: str
    scopes: list[str]
    resources: list[str] = []
    org_id: str | None = None
    auth_time: int  # Unix s: the original authentication (ID tokens minted on refresh)
    started_at: int
    # SHA-256 (hex) of the first refresh token as issued, when it was signed before this was
    # recorded: presenting exactly that token proves it without checking its signature.
    token_sha256: str | None = None


class RefreshTokenRotated(Event, frozen=True, kw_only=True, tag="refresh-token.rotated"):
    """The refresh token `jti` was used once and replaced by `next_jti` (stream of `jti`)."""

    family_id: str
    issuer_id: str
    session_id: str
    jti: str
    next_jti: str
    rotated_at: int
    # SHA-256 (hex) of the next refresh token as issued (see RefreshFamilyStarted).
    next_token_sha256: str | None = None


class RefreshFamilyRevoked(Event, frozen=True, kw_only=True, tag="refresh-family.revoked"):
    """The family ended (stream of its current jti): no token of it refreshes again."""

    family_id: str
    issuer_id: str
    session_id: str
    jti: str
    reason: str  # reuse | revoked | session_ended | consent_revoked | code_reuse
    revoked_at: int


class UserConsentGranted(Event, frozen=True, kw_only=True, tag="user.consent.granted"):
    issuer_id: str
    user_id: str
    client_id: str
    scopes: list[str]
    granted_at: int


class UserConsentRevoked(Event, frozen=True, kw_only=True, tag="user.consent.revoked"):
    issuer_id: str
    user_id: str
    client_id: str
    scopes: list[str]
    revoked_at: int


SessionEvent = (
    SessionCreated | SessionUpdated | SessionTerminated | SessionExpired | SessionCompromised
)
RefreshFamilyEvent = RefreshFamilyStarted | RefreshTokenRotated | RefreshFamilyRevoked
ConsentEvent = UserConsentGranted | UserConsentRevoked
SessionsEvent = SessionEvent | RefreshFamilyEvent | ConsentEvent
