-- More of the directory in the gateway's own projection (`gateway-directory`, DESIGN.md 2).

-- `GET /{issuer_id}/keyinfo` (idp-api.md 10.1) answers with the public key object, which names
-- the key and its creation time.
ALTER TABLE api_keys_view
    ADD COLUMN name text NOT NULL DEFAULT '',
    ADD COLUMN created_at bigint NOT NULL DEFAULT 0;

-- What checking a `ptk_` personal token on the Core API needs (core-api.md 1.2, 3.5): its
-- SHA-256 digest (never the token), status, expiry, scopes and owner. Deleted tokens leave.
CREATE TABLE personal_tokens_view (
    id            text PRIMARY KEY,
    jti           text NOT NULL UNIQUE,
    account_id    text NOT NULL,
    issuer_id     text NOT NULL,
    user_id       text NOT NULL,
    scopes        jsonb NOT NULL DEFAULT '[]',
    expires_at    bigint,
    status        text NOT NULL,
    token_sha256  text NOT NULL,
    version       integer NOT NULL
);

-- Users that are not active (suspended, disabled, deleted): their personal tokens stop working.
-- Active users, the rule, have no row; nothing else about a user is kept.
CREATE TABLE inactive_users_view (
    id       text PRIMARY KEY,
    status   text NOT NULL,
    version  integer NOT NULL
);

-- Rows projected before this migration lack the new columns and tables: empty the views and
-- forget the consumer's checkpoint, so that `gateway-directory` projects the stream again from
-- its start (the events stream keeps every event, deploy/nats/events-stream.json). Accounts are
-- re-inserted idempotently; the purge of deleted users' replays repeats harmlessly. Every
-- process loads the emptied views with the cleared checkpoint and follows from the first event.
TRUNCATE api_keys_view;
DELETE FROM checkpoints WHERE consumer = 'gateway-directory';
