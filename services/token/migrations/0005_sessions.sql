-- Human login: op and rp sessions, refresh-token families and consents (inline projections of
-- the token service's own events), and two ephemeral tables that are not state worth events:
-- login flows (a validated /authorize request waiting for the user) and authorization codes
-- (stored as SHA-256 digests). Both rows expire; a sweeper deletes them afterwards.

CREATE TABLE login_flows (
    id          text PRIMARY KEY,
    issuer_id   text NOT NULL,
    data        jsonb NOT NULL,
    expires_at  bigint NOT NULL
);
CREATE INDEX login_flows_expiry ON login_flows (expires_at);

CREATE TABLE authorization_codes (
    code_sha256        text PRIMARY KEY,
    issuer_id          text NOT NULL,
    client_id          text NOT NULL,
    data               jsonb NOT NULL,
    expires_at         bigint NOT NULL,
    used_at            bigint,
    -- What the exchange issued, decided before the code is marked used, so that a replay
    -- revokes exactly those tokens (idp-api.md 4.4).
    session_id         text,
    family_id          text,
    access_jti         text,
    access_expires_at  bigint
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

CREATE TABLE sessions_view (
    id                 text PRIMARY KEY,
    issuer_id          text NOT NULL,
    account_id         text NOT NULL,
    user_id            text NOT NULL,
    type               text NOT NULL,
    client_id          text,
    op_session_id      text,
    status             text NOT NULL,
    status_at          bigint,
    status_reason      text,
    status_by          text,
    auth_method        text NOT NULL,
    auth_time          bigint NOT NULL,
    device             jsonb NOT NULL DEFAULT '{}',
    idle_timeout       integer NOT NULL,
    cookie_sha256      text,
    last_activity_at   bigint NOT NULL,
    access_token_issued_at   bigint,
    refresh_token_issued_at  bigint,
    refresh_count      integer NOT NULL DEFAULT 0,
    compromised_at     bigint,
    compromised_reason text,
    revoked_reason     text,
    revoked_at         bigint,
    created_at         bigint NOT NULL,
    updated_at         bigint,
    expires_at         bigint NOT NULL
);
CREATE INDEX sessions_view_user ON sessions_view (issuer_id, user_id, type, created_at);
CREATE INDEX sessions_view_op ON sessions_view (op_session_id) WHERE op_session_id IS NOT NULL;

CREATE TABLE refresh_families (
    id           text PRIMARY KEY,
    issuer_id    text NOT NULL,
    client_id    text NOT NULL,
    user_id      text NOT NULL,
    session_id   text NOT NULL,
    current_jti  text NOT NULL,
    scopes       jsonb NOT NULL,
    resources    jsonb NOT NULL DEFAULT '[]',
    org_id       text,
    auth_time    bigint NOT NULL,
    status       text NOT NULL,
    generation   integer NOT NULL DEFAULT 0,
    revoked_reason text,
    created_at   bigint NOT NULL,
    rotated_at   bigint,
    revoked_at   bigint
);
CREATE INDEX refresh_families_session ON refresh_families (session_id);
CREATE INDEX refresh_families_user_client ON refresh_families (issuer_id, user_id, client_id);

CREATE TABLE consents_view (
    issuer_id   text NOT NULL,
    user_id     text NOT NULL,
    client_id   text NOT NULL,
    scopes      jsonb NOT NULL,
    granted_at  bigint NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
