-- The hosted login portal.
--
-- credentials_view: each user's password verifier and email-verified flag, an inline projection
-- of the Credential aggregate's events. `password_hash` holds the Argon2id hash sealed under a
-- key derived from the KEK (as in the events), never a bare hash.
CREATE TABLE credentials_view (
    user_id         text PRIMARY KEY,
    issuer_id       text NOT NULL,
    verifier_id     text,
    password_hash   text,
    email_verified  boolean NOT NULL DEFAULT false,
    updated_at      bigint NOT NULL
);

-- One-time tokens sent by mail (verify email, password reset, login link): ephemeral data with
-- an expiry, single use. Only the SHA-256 of a token is stored; the token itself exists only in
-- the mail. `used_at` is set by the one UPDATE that consumes it.
CREATE TABLE mail_tokens (
    token_hash  text PRIMARY KEY,
    purpose     text NOT NULL,
    issuer_id   text NOT NULL,
    user_id     text NOT NULL,
    flow_id     text,
    created_at  bigint NOT NULL,
    expires_at  bigint NOT NULL,
    used_at     bigint
);
CREATE INDEX mail_tokens_user ON mail_tokens (user_id, purpose) WHERE used_at IS NULL;
CREATE INDEX mail_tokens_expiry ON mail_tokens (expires_at);

-- What the portal shows and enforces of an issuer: its name and its settings (branding, signup
-- policy), learnt from issuer.* events like the rest of issuers_view.
ALTER TABLE issuers_view
    ADD COLUMN name text NOT NULL DEFAULT '',
    ADD COLUMN settings jsonb NOT NULL DEFAULT '{}';
