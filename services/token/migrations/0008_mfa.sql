-- Second factors and trusted devices (core-api.md 3.9 sub-resources, idp-api.md 12.6).
--
-- mfa_verifiers_view: each user's TOTP verifiers, an inline projection of their streams. The
-- secret is kept sealed (AES-GCM under a key derived from the KEK, bound to the verifier and
-- user ids) exactly as in the events; backup codes only as keyed digests, a used one as null.
-- `time_step` is the last RFC 6238 time step accepted: no code of it or before it is accepted.
CREATE TABLE mfa_verifiers_view (
    id            text PRIMARY KEY,
    user_id       text NOT NULL,
    issuer_id     text NOT NULL,
    account_id    text NOT NULL,
    verifier_type text NOT NULL,
    name          text NOT NULL,
    status        text NOT NULL,
    sealed_secret text NOT NULL,
    algorithm     text NOT NULL,
    digits        integer NOT NULL,
    period        integer NOT NULL,
    time_step     bigint NOT NULL,
    backup_codes  jsonb NOT NULL DEFAULT '[]',
    last_used_at  bigint,
    created_at    bigint NOT NULL,
    updated_at    bigint
);
CREATE INDEX mfa_verifiers_view_user ON mfa_verifiers_view (user_id, created_at);

-- trusted_devices_view: the devices each user trusts for MFA, until revoked. `token_sha256` is
-- the digest of the secret in a portal device's cookie (null for a device recorded through the
-- Core API, which never skips a challenge).
CREATE TABLE trusted_devices_view (
    id           text PRIMARY KEY,
    user_id      text NOT NULL,
    issuer_id    text NOT NULL,
    account_id   text NOT NULL,
    fingerprint  text NOT NULL,
    name         text,
    user_agent   text,
    token_sha256 text,
    trusted_at   bigint NOT NULL,
    expires_at   bigint NOT NULL,
    last_used_at bigint
);
CREATE INDEX trusted_devices_view_user ON trusted_devices_view (user_id, trusted_at);

-- Ephemeral (DESIGN.md 3), swept after expiry: a TOTP enrolment waiting for its first code (the
-- sealed secret it showed once), and a second-factor challenge of the portal waiting for a code
-- (known by the digest of the secret in the browser's cookie; used once). A challenge of a user
-- who must enrol first holds the enrolment it showed, and the factor once it passed.
CREATE TABLE mfa_enrollments (
    id            text PRIMARY KEY,
    user_id       text NOT NULL,
    issuer_id     text NOT NULL,
    account_id    text NOT NULL,
    name          text NOT NULL,
    sealed_secret text NOT NULL,
    created_at    bigint NOT NULL,
    expires_at    bigint NOT NULL
);
CREATE INDEX mfa_enrollments_expiry ON mfa_enrollments (expires_at);

CREATE TABLE mfa_challenges (
    id_sha256     text PRIMARY KEY,
    issuer_id     text NOT NULL,
    user_id       text NOT NULL,
    flow_id       text,
    method        text NOT NULL,
    enrollment_id text,
    passed        text,
    created_at    bigint NOT NULL,
    expires_at    bigint NOT NULL
);
CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);

-- An organization's `security.mfa_required` (core-api.md 3.12): its active members pass a second
-- factor at sign-in. Rows written before this version lack it, so token-organizations rebuilds
-- from the first event of the events stream (as in 0007; `authpi replay token-organizations`
-- where the stream no longer starts at the first event).
ALTER TABLE organizations_view ADD COLUMN mfa_required boolean NOT NULL DEFAULT false;
TRUNCATE organizations_view, memberships_view, sso_domains_view;
DELETE FROM checkpoints WHERE consumer = 'token-organizations';
