-- Issuers, their auth methods and clients (inline projections). Client rows keep secret digests
-- only; the token service builds its own cache from the events.
CREATE TABLE issuers_view (
    id                text PRIMARY KEY,
    account_id        text NOT NULL,
    name              text NOT NULL,
    description       text,
    links             jsonb NOT NULL DEFAULT '{}',
    available_scopes  jsonb NOT NULL DEFAULT '[]',
    status            text NOT NULL,
    status_at         bigint,
    settings          jsonb NOT NULL DEFAULT '{}',
    tokens            jsonb NOT NULL DEFAULT '{}',
    access_mode       text,
    branding_configured boolean NOT NULL DEFAULT false,
    metadata          jsonb NOT NULL DEFAULT '{}',
    version           integer NOT NULL,
    created_at        bigint NOT NULL,
    updated_at        bigint
);
CREATE INDEX issuers_view_account ON issuers_view (account_id, created_at DESC, id DESC);

CREATE TABLE issuer_auth_methods_view (
    id          text PRIMARY KEY,
    issuer_id   text NOT NULL,
    type        text NOT NULL,
    provider    text,
    name        text,
    enabled     boolean NOT NULL,
    login       boolean NOT NULL,
    signup      boolean NOT NULL,
    settings    jsonb NOT NULL DEFAULT '{}',
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  bigint NOT NULL,
    updated_at  bigint
);
CREATE INDEX issuer_auth_methods_view_issuer ON issuer_auth_methods_view (issuer_id, created_at);

CREATE TABLE clients_view (
    id                    text PRIMARY KEY,
    issuer_id             text NOT NULL,
    name                  text NOT NULL,
    type                  text NOT NULL,
    confidential          boolean NOT NULL,
    description           text,
    logo_url              text,
    status                text NOT NULL,
    status_at             bigint,
    status_reason         text,
    status_by             text,
    config                jsonb NOT NULL,
    metadata              jsonb NOT NULL DEFAULT '{}',
    secret_sha256         text,
    secret_hint           text,
    previous_sha256       text,
    previous_valid_until  bigint,
    secret_rotated_at     bigint,
    version               integer NOT NULL,
    created_at            bigint NOT NULL,
    updated_at            bigint
);
CREATE INDEX clients_view_issuer ON clients_view (issuer_id, created_at DESC, id DESC);
