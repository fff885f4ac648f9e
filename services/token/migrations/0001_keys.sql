-- The token service's own knowledge: issuers learnt from directory events, its signing keys
-- (public part, an inline projection of signing-key events) and the private keys, wrapped by
-- the KEK (never in events).
CREATE TABLE issuers_view (
    id                    text PRIMARY KEY,
    account_id            text NOT NULL,
    status                text NOT NULL,
    available_scopes      jsonb NOT NULL DEFAULT '[]',
    access_token_ttl      integer NOT NULL,
    refresh_token_ttl     integer NOT NULL,
    id_token_ttl          integer NOT NULL,
    session_max_age       integer NOT NULL,
    session_idle_timeout  integer NOT NULL,
    signing_algs          jsonb NOT NULL,
    default_alg           text NOT NULL,
    updated_at            bigint NOT NULL
);

CREATE TABLE signing_keys_view (
    kid         text PRIMARY KEY,
    issuer_id   text NOT NULL,
    account_id  text NOT NULL,
    alg         text NOT NULL,
    public_jwk  jsonb NOT NULL,
    status      text NOT NULL,
    created_at  bigint NOT NULL,
    retired_at  bigint
);
CREATE INDEX signing_keys_view_issuer ON signing_keys_view (issuer_id, created_at);

CREATE TABLE signing_key_secrets (
    kid          text PRIMARY KEY,
    issuer_id    text NOT NULL,
    wrapped_dek  text NOT NULL,
    ciphertext   text NOT NULL
);
