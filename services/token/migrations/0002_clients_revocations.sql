-- Clients as the token endpoint needs them, learnt from the directory's client.* events by the
-- durable consumer token-clients (the JSON is the token service's own ClientEntry, no secret,
-- only the SHA-256 digests). Every worker loads it with the consumer's checkpoint, then follows.
CREATE TABLE clients_view (
    id         text PRIMARY KEY,
    issuer_id  text NOT NULL,
    data       jsonb NOT NULL,
    version    integer NOT NULL
);

-- The revocation deny-list (RFC 7009): an inline projection of access-token.revoked events,
-- read by introspection. A row is useless once the token has expired.
CREATE TABLE revoked_tokens (
    jti         text PRIMARY KEY,
    issuer_id   text NOT NULL,
    client_id   text NOT NULL,
    token_type  text NOT NULL,
    expires_at  bigint NOT NULL,
    revoked_at  bigint NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
