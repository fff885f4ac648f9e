-- The public signing keys of AuthPI's own issuer (PLATFORM_ISSUER_ID), which signs console
-- users' access tokens (core-api.md 1.2). Learnt from the token service's `signing-key.*` events
-- by the `gateway-platform-keys` consumer (public JWKs only: private keys never leave the token
-- service, and the gateway never reads its tables, DESIGN.md 2). A retired key stays, marked, so
-- that a token naming it is refused as retired rather than awaited as unknown.
CREATE TABLE platform_keys_view (
    kid         text PRIMARY KEY,
    alg         text NOT NULL,
    public_jwk  jsonb NOT NULL,
    status      text NOT NULL CHECK (status IN ('active', 'retired')),
    created_at  bigint NOT NULL,
    version     integer NOT NULL
);
