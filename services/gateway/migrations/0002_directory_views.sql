-- The gateway's own knowledge of the directory (DESIGN.md 2: no service reads another's tables),
-- learnt from directory events by the `gateway-directory` projection consumer, which writes its
-- checkpoint in the same transaction. Every process' in-memory key cache loads api_keys_view
-- together with that checkpoint, then follows the stream from the next sequence.

-- What authentication needs of an API key: digests, never secrets (core-api.md 1.2, 3.4).
CREATE TABLE api_keys_view (
    id                    text PRIMARY KEY,
    account_id            text NOT NULL,
    org_id                text NOT NULL,
    issuer_id             text,
    status                text NOT NULL,
    scopes                jsonb NOT NULL DEFAULT '[]',
    ip_allowlist          jsonb NOT NULL DEFAULT '[]',
    expires_at            bigint,
    secret_sha256         text NOT NULL,
    previous_sha256       text,
    previous_valid_until  bigint,
    version               integer NOT NULL
);

-- Which accounts exist: the `{account_id}` path check (403 for another account, 404 for none).
CREATE TABLE accounts_view (
    id          text PRIMARY KEY,
    org_id      text NOT NULL,
    created_at  bigint NOT NULL
);
