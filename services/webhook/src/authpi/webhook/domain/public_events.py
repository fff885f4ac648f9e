"""Stored events and facts -> public events (platform.md 6.1, 6.3): the one translation behind the
audit log, and so behind the Events API, webhooks and the public stream. Pure.

Every public type has an explicit rule: the subject keys it adds (beyond `account_id` and
`issuer_id`) and an allow-list of the payload fields its `data` carries. A field that is not
listed never leaves the service, so a field added to an event later stays internal until a rule
names it: sealed PII (`pii`), digests (`*_sha256`, `sealed_hash`, `cookie_sha256`) and secrets
cannot leak by omission. Nested settings (`settings`, `sso`) are scrubbed of secret-looking keys.
Internal types (signing keys, refresh families, credential rehashes, single-token revocations)
have no rule and produce nothing."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from authpi.contracts.base import Meta
from authpi.contracts.facts import Fact, MachineTokenIssued, SessionTokenRefreshed
from authpi.contracts.public import SOURCE, SPEC_VERSION, PublicEvent, public_event_id
from authpi.crypto.ids import crockford32


class Rule(msgspec.Struct, frozen=True):
    """`subject`: (subject key, payload field) pairs; `data`: payload fields kept, each either
    a name or (public name, payload field)."""

    subject: tuple[tuple[str, str], ...]
    data: tuple[str | tuple[str, str], ...]


# Types of the catalogue that are internal to their service: never public (platform.md 6.3 has
# no such type). Listed so that a test can check every catalogue type is decided one way.
INTERNAL_TYPES: frozenset[str] = frozenset(
    {
        "signing-key.created",
        "signing-key.retired",
        "access-token.revoked",
        "refresh-family.started",
        "refresh-token.rotated",
        "refresh-family.revoked",
        "credential.password.rehashed",
        "credit-ledger.entry-recorded",
        "payment-method.added",
        "payment-method.updated",
        "payment-method.removed",
        # NATS users of integrators (a bcrypt digest; platform.md 6.1: never in public data)
        "integrator-credential.issued",
        "integrator-credential.revoked",
        # Team notes: audit only, not in the webhook catalogue (core-api.md 3.20)
        "note.created",
        "note.updated",
        "note.deleted",
        # Invitation edits and re-sent links (core-api.md 3.15): not in the catalogue
        "organization.invitation.updated",
        "organization.invitation.resent",
    }
)

_INVITATION = (("org_id", "org_id"), ("invitation_id", "id"))
_STATUS = ("id", "status", "status_reason", "status_by", "status_at")
_USER = (("user_id", "user_id"),)
_SESSION = (("user_id", "user_id"), ("session_id", "session_id"), ("client_id", "client_id"))
_TYPE = ("type", "verifier_type")

_USER_SNAPSHOT = ("id", "issuer_id", "status", "method", "region", "store_id", "username_type",
                  "scopes", "metadata", "created_at")  # fmt: skip
_CLIENT_SNAPSHOT = ("id", "issuer_id", "name", "client_type", "confidential", "description",
                    "logo_url", "status", "config", "metadata", "secret_hint")  # fmt: skip
_KEY_SNAPSHOT = ("id", "org_id", "issuer_id", "name", "description", "tags", "scopes",
                 "ip_allowlist", "expires_at", "metadata", "secret_hint")  # fmt: skip
_ISSUER_SNAPSHOT = ("id", "name", "description", "links", "available_scopes", "status",
                    "settings", "tokens", "metadata")  # fmt: skip
_AUTH_METHOD = ("id", ("type", "method_type"), "provider", "name", "enabled", "login", "signup",
                "settings", "metadata")  # fmt: skip
_ORG_SNAPSHOT = ("id", "issuer_id", "name", "description", "logo_url", ("type", "org_type"),
                 "max_members", "default_member_scopes", "invitation_enabled",
                 "invitation_message", "address", "business_details", "contact", "social_links",
                 "scopes", "security", "sso", "custom_fields", "metadata")  # fmt: skip
_MEMBERSHIP = ("org_id", "member_id", "member_type", "status", "status_reason", "status_by",
               "scopes", "groups", "user_title", "metadata")  # fmt: skip
_GROUP = ("id", "org_id", "name", "description", "scopes", "metadata")
_AGENT_SNAPSHOT = ("id", "name", "description", "model", "provider", "version", "status",
                   "status_reason", "status_by", "scopes", "metadata")  # fmt: skip
_WEBHOOK_SNAPSHOT = ("id", "account_id", "name", "description", "url", "status",
                     "status_reason", "status_by", "status_at", "auth", "events", "subjects",
                     "retry", "circuit_breaker", "metadata")  # fmt: skip
_WEBHOOK_SUBJECT = (("webhook_id", "id"),)

# fmt: off
RULES: dict[str, Rule] = {
    # Sessions and tokens
    "session.created": Rule(
        _SESSION,
        (
            ("type", "session_type"),
            "status",
            "authentication",
            "device",
            "location",
            "op_session_id",
            "client_id",
            "idle_timeout",
            "expires_at",
            "created_at",
        ),
    ),
    "session.updated": Rule(
        _SESSION, ("status", "changed", "status_reason", "status_by", "updated_at")
    ),
    "session.expired": Rule(_SESSION, ("reason", "expired_at")),
    "session.terminated": Rule(
        _SESSION, ("revoked_reason", "status_by", "cascade_from", "revoked_at")
    ),
    "session.compromised": Rule(_SESSION, ("compromised_reason", "jti", "compromised_at")),
    # Users
    "user.created": Rule((("user_id", "id"),), _USER_SNAPSHOT),
    "user.updated": Rule(
        (("user_id", "id"),),
        ("id", "issuer_id", "changed", "username_type", "scopes", "metadata", "updated_at"),
    ),
    "user.deleted": Rule((("user_id", "id"),), ("id", "deleted_at")),
    "user.blocked": Rule((("user_id", "id"),), _STATUS),
    "user.unblocked": Rule((("user_id", "id"),), _STATUS),
    "user.approval.requested": Rule((("user_id", "id"),), ("id", "approval", "requested_at")),
    "user.approval.approved": Rule(
        (("user_id", "id"),), ("id", "approval", "status", "status_by", "status_at")
    ),
    "user.approval.rejected": Rule(
        (("user_id", "id"),),
        ("id", "approval", "status", "status_reason", "status_by", "status_at"),
    ),
    "user.verification.succeeded": Rule(
        (*_USER, ("session_id", "session_id"), ("client_id", "client_id")),
        ("method", "verifier_id", "client_id", "at"),
    ),
    "user.verification.failed": Rule(_USER, ("method", "reason", "username_hash", "at")),
    "user.password.changed": Rule(
        (*_USER, ("verifier_id", "verifier_id")), ("verifier_id", "changed_at")
    ),
    "user.password.reset-requested": Rule(_USER, ("channel", "expires_at", "requested_at")),
    "user.password.reset": Rule(_USER, ("verifier_id", "reset_at")),
    "user.login-link.requested": Rule(
        (*_USER, ("client_id", "client_id")), ("expires_at", "client_id", "requested_at")
    ),
    "user.login-link.consumed": Rule(
        (*_USER, ("session_id", "session_id")), ("session_id", "consumed_at")
    ),
    "user.verifier.created": Rule(
        (*_USER, ("verifier_id", "verifier_id")), (_TYPE, "name", "created_at")
    ),
    "user.verifier.updated": Rule(
        (*_USER, ("verifier_id", "verifier_id")),
        (_TYPE, "changed", "name", "status", "updated_at"),
    ),
    "user.verifier.deleted": Rule(
        (*_USER, ("verifier_id", "verifier_id")), (_TYPE, "deleted_at")
    ),
    # Second factors and trusted devices: never a sealed secret, a backup-code or cookie digest.
    "user.mfa.factor-created": Rule(
        (*_USER, ("verifier_id", "verifier_id")), ("factor_type", "name", "created_at")
    ),
    "user.mfa.factor-deleted": Rule(
        (*_USER, ("verifier_id", "verifier_id")), ("factor_type", "deleted_at")
    ),
    "user.mfa.backup-codes.regenerated": Rule(
        (*_USER, ("verifier_id", "verifier_id")), ("count", "regenerated_at")
    ),
    "user.mfa.backup-codes.low": Rule(
        (*_USER, ("verifier_id", "verifier_id")), ("remaining", "at")
    ),
    "user.mfa.verification.succeeded": Rule(
        (*_USER, ("verifier_id", "verifier_id"), ("device_id", "device_id")),
        ("factor_type", "verifier_id", "device_id", "remaining", "client_id", "at"),
    ),
    "user.mfa.verification.failed": Rule(
        (*_USER, ("verifier_id", "verifier_id")), ("factor_type", "verifier_id", "reason", "at")
    ),
    "user.device.trusted": Rule(
        (*_USER, ("device_id", "device_id")),
        ("device_id", "name", "fingerprint", "user_agent", "expires_at", "trusted_at"),
    ),
    "user.device.revoked": Rule(
        (*_USER, ("device_id", "device_id")),
        ("device_id", "device_ids", "revoked_count", "revoked_at"),
    ),
    "user.email.verified": Rule(_USER, ("username_type", "verified_at")),
    "user.consent.granted": Rule((*_USER, ("client_id", "client_id")), ("scopes", "granted_at")),
    "user.consent.revoked": Rule((*_USER, ("client_id", "client_id")), ("scopes", "revoked_at")),
    "user.sso.provisioned": Rule(
        (("user_id", "id"), ("org_id", "org_id")),
        ("org_id", "protocol", "external_issuer", "external_subject", "provisioned_at"),
    ),
    "user.sso.linked": Rule(
        (("user_id", "id"), ("org_id", "org_id")),
        ("org_id", "protocol", "external_issuer", "external_subject", "linked_at"),
    ),
    "user.personal-token.created": Rule(
        (*_USER, ("token_id", "id")),
        (
            "id",
            "user_id",
            "name",
            "description",
            "tags",
            "scopes",
            "audience",
            "expires_at",
            "metadata",
            "jti",
            "token_hint",
            "created_at",
        ),
    ),
    "user.personal-token.updated": Rule(
        (*_USER, ("token_id", "id")),
        ("id", "user_id", "changed", "status", "status_reason", "status_by", "updated_at"),
    ),
    "user.personal-token.deleted": Rule(
        (*_USER, ("token_id", "id")), ("id", "user_id", "deleted_at")
    ),
    # Clients, API keys, issuers
    "client.created": Rule((("client_id", "id"),), (*_CLIENT_SNAPSHOT, "created_at")),
    "client.updated": Rule(
        (("client_id", "id"),),
        (
            "id",
            "issuer_id",
            "changed",
            "name",
            "description",
            "logo_url",
            "config",
            "metadata",
            "updated_at",
        ),
    ),
    "client.secret.rotated": Rule(
        (("client_id", "id"),), ("id", "secret_hint", "secret_rotated_at", "previous_valid_until")
    ),
    "client.blocked": Rule((("client_id", "id"),), _STATUS),
    "client.unblocked": Rule((("client_id", "id"),), _STATUS),
    "client.deleted": Rule((("client_id", "id"),), ("id", "deleted_at")),
    "api-key.created": Rule(
        (("key_id", "id"), ("org_id", "org_id")), (*_KEY_SNAPSHOT, "created_at")
    ),
    "api-key.updated": Rule(
        (("key_id", "id"), ("org_id", "org_id")),
        (
            "id",
            "changed",
            "name",
            "description",
            "tags",
            "scopes",
            "ip_allowlist",
            "expires_at",
            "metadata",
            "status",
            "status_reason",
            "status_by",
            "secret_hint",
            "previous_valid_until",
            "updated_at",
        ),
    ),
    "api-key.deleted": Rule((("key_id", "id"), ("org_id", "org_id")), ("id", "deleted_at")),
    "api-key.blocked": Rule((("key_id", "id"), ("org_id", "org_id")), _STATUS),
    "api-key.unblocked": Rule((("key_id", "id"), ("org_id", "org_id")), _STATUS),
    "issuer.created": Rule((("issuer_id", "id"),), (*_ISSUER_SNAPSHOT, "created_at")),
    "issuer.updated": Rule(
        (("issuer_id", "id"),), (*_ISSUER_SNAPSHOT, "changed", "status_at", "updated_at")
    ),
    "issuer.deleted": Rule((("issuer_id", "id"),), ("id", "deleted_at")),
    "issuer.auth-method.created": Rule(
        (("auth_method_id", "id"),), (*_AUTH_METHOD, "created_at")
    ),
    "issuer.auth-method.updated": Rule(
        (("auth_method_id", "id"),), (*_AUTH_METHOD, "changed", "updated_at")
    ),
    "issuer.auth-method.deleted": Rule((("auth_method_id", "id"),), ("id", "deleted_at")),
    # Organizations
    "organization.created": Rule((("org_id", "id"),), (*_ORG_SNAPSHOT, "created_at")),
    "organization.updated": Rule(
        (("org_id", "id"),),
        (*_ORG_SNAPSHOT, "changed", "status", "status_reason", "status_by", "updated_at"),
    ),
    "organization.deleted": Rule((("org_id", "id"),), ("id", "deleted_at")),
    "organization.suspended": Rule((("org_id", "id"),), _STATUS),
    "organization.reactivated": Rule((("org_id", "id"),), _STATUS),
    "organization.membership.created": Rule(
        (("org_id", "org_id"), ("member_id", "member_id"), ("member_type", "member_type")),
        (*_MEMBERSHIP, "joined_at"),
    ),
    "organization.membership.updated": Rule(
        (("org_id", "org_id"), ("member_id", "member_id"), ("member_type", "member_type")),
        (*_MEMBERSHIP, "changed", "updated_at"),
    ),
    "organization.membership.deleted": Rule(
        (("org_id", "org_id"), ("member_id", "member_id"), ("member_type", "member_type")),
        ("org_id", "member_id", "member_type", "deleted_at"),
    ),
    "organization.group.created": Rule(
        (("org_id", "org_id"), ("group_id", "id")), (*_GROUP, "created_at")
    ),
    "organization.group.updated": Rule(
        (("org_id", "org_id"), ("group_id", "id")), (*_GROUP, "changed", "updated_at")
    ),
    "organization.group.deleted": Rule(
        (("org_id", "org_id"), ("group_id", "id")), ("id", "org_id", "deleted_at")
    ),
    # platform.md 6.3: `sso` (no secrets; nested keys scrubbed too), never `secret_sha256`.
    "organization.sso.enabled": Rule((("org_id", "org_id"),), ("sso", "changed", "updated_at")),
    "organization.sso.disabled": Rule((("org_id", "org_id"),), ("sso", "changed", "updated_at")),
    "organization.sso.updated": Rule((("org_id", "org_id"),), ("sso", "changed", "updated_at")),
    "organization.sso.domain-created": Rule(
        (("org_id", "org_id"),), ("domain", "txt_record_name", "created_at")
    ),
    "organization.sso.domain-verified": Rule((("org_id", "org_id"),), ("domain", "verified_at")),
    "organization.sso.domain-deleted": Rule((("org_id", "org_id"),), ("domain", "deleted_at")),
    # Invitations (platform.md 6.3): snapshots without the link's digest, and without personal
    # data, as the user snapshots: the invited address, the inviter and the message are sealed
    # under the invitation's key (`pii`, left out), which a revocation or a decline destroys,
    # while the audit log, the deliveries and the public stream are never rewritten. The Core
    # API shows them (GET of the invitation) for as long as the key lives. Events written
    # before sealing carried `email_invited` and `inviter` in clear: not listed, never public.
    "organization.invitation.created": Rule(
        _INVITATION,
        ("id", "org_id", "user_id_invited", "user_title", "scopes", "expires_at", "created_at"),
    ),
    "organization.invitation.accepted": Rule(
        (*_INVITATION, ("user_id", "user_id")),
        ("id", "org_id", "user_id", "scopes", "accepted_at"),
    ),
    "organization.invitation.declined": Rule(_INVITATION, ("id", "org_id", "declined_at")),
    "organization.invitation.deleted": Rule(_INVITATION, ("id", "revoked_at")),
    # Agents
    "agent.created": Rule((("agent_id", "id"),), (*_AGENT_SNAPSHOT, "created_at")),
    "agent.updated": Rule(
        (("agent_id", "id"),), (*_AGENT_SNAPSHOT, "changed", "status_at", "updated_at")
    ),
    "agent.deleted": Rule(
        (("agent_id", "id"),), ("id", "name", "agent", "verifier_ids", "deleted_at")
    ),
    "agent.verifier.added": Rule(
        (("agent_id", "agent_id"), ("verifier_id", "verifier_id")),
        (
            "verifier_id",
            _TYPE,
            "status",
            "name",
            "description",
            "credential",
            "proof",
            "agent",
            "created_at",
        ),
    ),
    "agent.verifier.removed": Rule(
        (("agent_id", "agent_id"), ("verifier_id", "verifier_id")),
        ("verifier_id", _TYPE, "network", "agent", "removed_at"),
    ),
    # Account
    "account.created": Rule(
        (), ("id", "org_id", "name", "owner_user_id", "metadata", "created_at")
    ),
    "account.updated": Rule(
        (),
        (
            "id",
            "changed",
            "name",
            "description",
            "logo_url",
            "owner_user_id",
            "metadata",
            "domains",
            "updated_at",
        ),
    ),
    "account.domain.added": Rule((), ("host", "verified", "added_at")),
    "account.domain.removed": Rule((), ("host", "verified", "removed_at")),
    "account.domain.assigned": Rule((), ("host", "issuer_id", "assigned_at")),
    "account.domain.unassigned": Rule((), ("host", "issuer_id", "unassigned_at")),
    # Credits (platform.md 5.10, 6.3): the billing service's balance changes.
    "account.credits.updated": Rule(
        (), ("entry_id", "entry_type", "amount_\u03bcusd", "balance_\u03bcusd", "payment_reference")
    ),
    "account.credits.depleted": Rule((), ("balance_\u03bcusd", "billing_mode")),
    # Webhooks (the webhook service's own events): snapshots without secrets, hints only.
    "webhook.created": Rule(_WEBHOOK_SUBJECT, (*_WEBHOOK_SNAPSHOT, "created_at")),
    "webhook.updated": Rule(
        _WEBHOOK_SUBJECT, (*_WEBHOOK_SNAPSHOT, "changed", "rotated", "updated_at")
    ),
    "webhook.deleted": Rule(_WEBHOOK_SUBJECT, ("id", "name", "url", "deleted_at")),
    "webhook.paused": Rule(_WEBHOOK_SUBJECT, _STATUS),
    "webhook.resumed": Rule(_WEBHOOK_SUBJECT, _STATUS),
    # Auth flows
    "auth.flow.replay-attempt": Rule(
        (("client_id", "client_id"),), ("flow", "artifact", "client_id", "at")
    ),
}
# fmt: on

# The data fields of the public facts (platform.md 6.3), all fields of the fact Structs.
FACT_DATA: dict[str, tuple[str, ...]] = {
    "machine.token.issued": ("grant_type", "client_id", "scope", "aud", "jti", "expires_at",
                             "dat_type", "verifier_id"),
    "session.token-refreshed": ("refresh_count", "jti", "scope", "access_token_issued_at"),
}  # fmt: skip

# Keys dropped from nested free-form settings (issuer settings, SSO configuration) at any depth.
_SECRET_KEY = re.compile(
    r"secret|password|private|sha256|sealed|(^|_)(token|key|credentials?)$", re.IGNORECASE
)
_SCRUBBED = frozenset({"settings", "sso", "security", "auth"})
_HINT = re.compile(r"_hint$")


def from_stored(
    event_type: str, event_id: str, payload: Mapping[str, Any], meta: Meta, recorded_at: int
) -> PublicEvent | None:
    """The public event of one stored event (its payload as builtins); None for internal types."""
    rule = RULES.get(event_type)
    if rule is None:
        return None
    subject = {"account_id": _account(event_type, payload, meta)}
    issuer = payload.get("issuer_id") or meta.issuer_id
    if isinstance(issuer, str) and issuer:
        subject["issuer_id"] = issuer
    for key, field in rule.subject:
        value = payload.get(field) or meta.subject.get(key)
        if isinstance(value, str) and value and key not in subject:
            subject[key] = value
    return PublicEvent(
        spec=SPEC_VERSION,
        id=public_event_id(event_id),
        trace=meta.correlation_id or meta.request_id,
        type=event_type,
        source=SOURCE,
        trigger=meta.trigger,
        auth=_auth(meta),
        subject=subject,
        timestamp=recorded_at,
        data=_data(rule, payload),
    )


def _account(event_type: str, payload: Mapping[str, Any], meta: Meta) -> str:
    if event_type in ("account.created", "account.updated"):
        return str(payload.get("id") or meta.account_id)
    return meta.account_id


def _auth(meta: Meta) -> dict[str, Any]:
    auth: dict[str, Any] = msgspec.to_builtins(meta.actor)
    if meta.request_id and "request_id" not in auth:
        auth["request_id"] = meta.request_id
    return auth


def _data(rule: Rule, payload: Mapping[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for entry in rule.data:
        name, field = (entry, entry) if isinstance(entry, str) else entry
        if field in payload:
            value = payload[field]
            data[name] = _scrub(value) if field in _SCRUBBED else value
    return data


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _scrub(v)
            for k, v in value.items()  # pyright: ignore[reportUnknownVariableType]
            if not (isinstance(k, str) and _SECRET_KEY.search(k) and not _HINT.search(k))
        }
    if isinstance(value, list):
        return [_scrub(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    return value


def fact_event_id(fact_type: str, at_ms: int, jti: str) -> str:
    """A fact's evt_ id: the time part is its ms (sortable with stored events), the rest a hash
    of its type and jti, so a fact redelivered in another batch maps to the same id."""
    digest = int.from_bytes(hashlib.sha256(f"{fact_type}:{jti}".encode()).digest()[:10], "big")
    # crockford32((at_ms << 80) | digest), as public_event_id: the first 10 characters are the
    # 48 bits of the ms (with two leading zero bits), the last 16 the 80 bits of the digest. The
    # facts of a batch share few ms, so the time part is encoded once per ms.
    pairs = _CROCKFORD_PAIRS
    return _time_part(at_ms) + "".join([pairs[(digest >> s) & 1023] for s in _DIGEST_SHIFTS])


_CROCKFORD_PAIRS = [crockford32(i)[-2:] for i in range(1024)]  # the 10-bit pairs
_DIGEST_SHIFTS = tuple(range(70, -1, -10))


@functools.lru_cache(maxsize=4096)
def _time_part(at_ms: int) -> str:
    return "evt_" + crockford32((at_ms & (2**48 - 1)) << 80)[:10]


def from_fact(fact: Fact) -> PublicEvent | None:
    """The public event of a high-volume fact (platform.md 6.2); None for other facts."""
    match fact:
        case MachineTokenIssued():
            subject = {"account_id": fact.account_id, "issuer_id": fact.issuer_id}
            if fact.agent_id:
                subject["agent_id"] = fact.agent_id
                auth: dict[str, Any] = {"type": "agent", "agent_id": fact.agent_id}
            else:
                subject["client_id"] = fact.client_id
                auth = {"type": "client", "client_id": fact.client_id}
            data = {
                "grant_type": fact.grant_type, "client_id": fact.client_id, "scope": fact.scope,
                "aud": fact.aud, "jti": fact.jti, "expires_at": fact.expires_at,
                "dat_type": fact.dat_type, "verifier_id": fact.verifier_id,
            }  # FACT_DATA["machine.token.issued"], spelt out: once per token  # fmt: skip
            return _fact_event(
                "machine.token.issued", fact.issued_at, fact.jti, subject, auth, data
            )
        case SessionTokenRefreshed():
            subject = {"account_id": fact.account_id, "issuer_id": fact.issuer_id,
                       "user_id": fact.user_id, "session_id": fact.session_id,
                       "client_id": fact.client_id}  # fmt: skip
            auth = {"type": "client", "client_id": fact.client_id, "user_id": fact.user_id}
            data = {k: getattr(fact, k) for k in FACT_DATA["session.token-refreshed"]}
            at = fact.access_token_issued_at
            return _fact_event("session.token-refreshed", at, fact.jti, subject, auth, data)
        case _:
            return None


def _fact_event(
    event_type: str,
    at: int,
    jti: str,
    subject: dict[str, str],
    auth: dict[str, Any],
    data: dict[str, Any],
) -> PublicEvent:
    return PublicEvent(
        spec=SPEC_VERSION, id=fact_event_id(event_type, at, jti), trace=None, type=event_type,
        source=SOURCE, trigger="idp", auth=auth, subject=subject, timestamp=at, data=data,
    )  # fmt: skip
