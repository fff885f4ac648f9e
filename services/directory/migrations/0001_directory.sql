-- Directory read models (inline projections, same transaction as the events) and PII keys.
CREATE TABLE accounts_view (
    id            text PRIMARY KEY,
    org_id        text NOT NULL,
    name          text NOT NULL,
    description   text,
    logo_url      text,
    owner_user_id text,
    metadata      jsonb NOT NULL DEFAULT '{}',
    version       integer NOT NULL,
    created_at    bigint NOT NULL,
    updated_at    bigint
);

CREATE TABLE api_keys_view (
    id                    text PRIMARY KEY,
    account_id            text NOT NULL,
    org_id                text NOT NULL,
    issuer_id             text,
    name                  text NOT NULL,
    description           text,
    tags                  jsonb NOT NULL DEFAULT '[]',
    scopes                jsonb NOT NULL DEFAULT '[]',
    ip_allowlist          jsonb NOT NULL DEFAULT '[]',
    expires_at            bigint,
    metadata              jsonb NOT NULL DEFAULT '{}',
    status                text NOT NULL,
    status_at             bigint,
    status_reason         text,
    status_by             text,
    secret_sha256         text NOT NULL,
    secret_hint           text NOT NULL,
    previous_sha256       text,
    previous_valid_until  bigint,
    last_rotated_at       bigint,
    version               integer NOT NULL,
    created_at            bigint NOT NULL,
    updated_at            bigint
);
CREATE INDEX api_keys_view_account ON api_keys_view (account_id, id);

-- Per-user data keys, wrapped by the KEK. Deleting a row crypto-shreds the user's PII everywhere
-- it was written encrypted (events, replays, redeliveries). DESIGN.md 7.
CREATE TABLE pii_keys (
    subject_id  text PRIMARY KEY,
    wrapped_key text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users_view (
    id            text PRIMARY KEY,
    account_id    text NOT NULL,
    issuer_id     text NOT NULL,
    username_hash text NOT NULL,
    status        text NOT NULL,
    region        text NOT NULL,
    store_id      text NOT NULL,
    -- Clear PII lives only here (and is dropped on delete); events hold ciphertext only.
    username      text,
    profile       jsonb NOT NULL DEFAULT '{}',
    version       integer NOT NULL,
    created_at    bigint NOT NULL,
    updated_at    bigint
);
CREATE INDEX users_view_issuer ON users_view (issuer_id, id);
