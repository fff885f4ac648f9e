"""Events of the token service's Credential aggregate (a user's password verifier and the
verified flag of its email username) and of sign-in attempts in the hosted portal (platform.md
6.3: user.verifier.*, user.password.*, user.login-link.*, user.email.verified,
user.verification.*, auth.flow.*).

No secret and no clear PII: never a password, a mail token or an address. A password verifier
carries its Argon2id hash *sealed* (AES-GCM under a key derived from the KEK, bound to the user
id), so the event store, the bus and every replay hold nothing an offline guesser can use
without the KEK; webhook rendering drops `sealed_hash` like it drops secret digests. Failed
attempts name the username only by its `username_hash` (HMAC with the issuer's pepper)."""

from __future__ import annotations

from authpi.contracts.base import Event


class UserVerifierCreated(Event, frozen=True, kw_only=True, tag="user.verifier.created"):
    """A password was set for a user who had none (signup, or a first reset)."""

    issuer_id: str
    user_id: str
    verifier_id: str
    verifier_type: str = "password"  # the spec's `type`, renamed: `type` is the event tag
    name: str = "Password"
    sealed_hash: str
    created_at: int


class UserPasswordChanged(Event, frozen=True, kw_only=True, tag="user.password.changed"):
    issuer_id: str
    user_id: str
    verifier_id: str
    sealed_hash: str
    changed_at: int


class UserPasswordResetRequested(
    Event, frozen=True, kw_only=True, tag="user.password.reset-requested"
):
    issuer_id: str
    user_id: str
    channel: str = "email"
    expires_at: int
    requested_at: int


class UserPasswordReset(Event, frozen=True, kw_only=True, tag="user.password.reset"):
    """A reset completed through a mailed link: the previous password stops working."""

    issuer_id: str
    user_id: str
    verifier_id: str
    sealed_hash: str
    reset_at: int


class PasswordRehashed(Event, frozen=True, kw_only=True, tag="credential.password.rehashed"):
    """The same password, hashed again with the deployment's current Argon2id parameters at a
    successful sign-in. Internal to the token service (not in the spec's catalogue): never
    delivered to webhooks."""

    issuer_id: str
    user_id: str
    verifier_id: str
    sealed_hash: str
    rehashed_at: int


class UserLoginLinkRequested(Event, frozen=True, kw_only=True, tag="user.login-link.requested"):
    issuer_id: str
    user_id: str
    client_id: str | None = None
    expires_at: int
    requested_at: int


class UserLoginLinkConsumed(Event, frozen=True, kw_only=True, tag="user.login-link.consumed"):
    issuer_id: str
    user_id: str
    session_id: str | None = None
    consumed_at: int


class UserEmailVerified(Event, frozen=True, kw_only=True, tag="user.email.verified"):
    """The user proved control of the email address that is its username."""

    issuer_id: str
    user_id: str
    username_type: str = "email"
    verified_at: int


class UserVerificationSucceeded(
    Event, frozen=True, kw_only=True, tag="user.verification.succeeded"
):
    issuer_id: str
    user_id: str
    method: str  # password | magic_link
    verifier_id: str | None = None
    client_id: str | None = None
    at: int


class UserVerificationFailed(Event, frozen=True, kw_only=True, tag="user.verification.failed"):
    issuer_id: str
    user_id: str | None = None  # None: no such username (the answer was the same)
    method: str  # password | magic_link
    reason: str  # invalid_credentials | user_blocked | locked
    username_hash: str | None = None
    at: int


class AuthFlowReplayAttempt(Event, frozen=True, kw_only=True, tag="auth.flow.replay-attempt"):
    """A mailed link (or another one-time artefact) was presented again after its use."""

    issuer_id: str
    client_id: str | None = None
    flow: str  # verify_email | password_reset | login_link
    artifact: str  # link | code | state
    at: int


CredentialEvent = (
    UserVerifierCreated
    | UserPasswordChanged
    | UserPasswordResetRequested
    | UserPasswordReset
    | PasswordRehashed
    | UserLoginLinkRequested
    | UserLoginLinkConsumed
    | UserEmailVerified
)
AttemptEvent = UserVerificationSucceeded | UserVerificationFailed | AuthFlowReplayAttempt
