-- Users (core-api.md 3.9) and personal tokens (3.5). users_view holds clear PII only while the
-- user exists; deletion nulls it in the same transaction that destroys the user's data key.
ALTER TABLE users_view
    ADD COLUMN username_type text NOT NULL DEFAULT 'email',
    ADD COLUMN custom_fields jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN addresses     jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN scopes        jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN metadata      jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN status_at     bigint,
    ADD COLUMN status_reason text,
    ADD COLUMN status_by     text,
    ADD COLUMN deleted_at    bigint;
CREATE INDEX users_view_issuer_recent ON users_view (issuer_id, created_at DESC, id DESC);

-- Personal access tokens: the SHA-256 digest of the token and a hint, never the token.
CREATE TABLE personal_tokens_view (
    id            text PRIMARY KEY,
    account_id    text NOT NULL,
    issuer_id     text NOT NULL,
    user_id       text NOT NULL,
    name          text NOT NULL,
    description   text,
    tags          jsonb NOT NULL DEFAULT '[]',
    scopes        jsonb NOT NULL DEFAULT '[]',
    audience      text,
    expires_at    bigint,
    metadata      jsonb NOT NULL DEFAULT '{}',
    jti           text NOT NULL,
    token_sha256  text NOT NULL,
    token_hint    text NOT NULL,
    status        text NOT NULL,
    status_at     bigint,
    status_reason text,
    status_by     text,
    version       integer NOT NULL,
    created_at    bigint NOT NULL,
    updated_at    bigint
);
CREATE INDEX personal_tokens_view_user ON personal_tokens_view (user_id, created_at DESC, id DESC);
