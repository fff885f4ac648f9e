-- The agent service's read models. agents_view and agent_verifiers_view are inline projections
-- of the agent streams (same transaction as the events); issuers_view, organizations_seen and
-- agent_memberships_view are learnt from the directory's events by consumers (the agent
-- service never reads the directory's tables).
CREATE TABLE agents_view (
    id            text PRIMARY KEY,
    account_id    text NOT NULL,
    issuer_id     text NOT NULL,
    name          text NOT NULL,
    description   text,
    model         text,
    provider      text,
    version       text,
    status        text NOT NULL,
    status_at     bigint,
    status_reason text,
    status_by     text,
    scopes        jsonb NOT NULL DEFAULT '[]',
    metadata      jsonb NOT NULL DEFAULT '{}',
    stream_version integer NOT NULL,
    created_at    bigint NOT NULL,
    updated_at    bigint
);
CREATE INDEX agents_view_issuer ON agents_view (issuer_id, created_at DESC, id DESC);

-- Secret verifiers keep the SHA-256 digest only; wallets keep the display credential and the
-- lookup form of the address (lowercase for eip155).
CREATE TABLE agent_verifiers_view (
    id             text PRIMARY KEY,
    agent_id       text NOT NULL,
    issuer_id      text NOT NULL,
    type           text NOT NULL,
    status         text NOT NULL,
    name           text,
    description    text,
    credential     jsonb NOT NULL DEFAULT '{}',
    secret_sha256  text,
    network        text,
    lookup_address text,
    created_at     bigint NOT NULL,
    updated_at     bigint
);
CREATE INDEX agent_verifiers_view_agent ON agent_verifiers_view (agent_id, created_at, id);
CREATE INDEX agent_verifiers_view_wallet ON agent_verifiers_view (issuer_id, network, lookup_address)
    WHERE type = 'wallet';

-- Usage of each verifier (platform.md 3.3): counted from machine.token.issued facts and wallet
-- resolutions, not from events, so a replay of agent_verifiers_view leaves the counts alone.
CREATE TABLE verifier_usage (
    verifier_id  text PRIMARY KEY,
    agent_id     text NOT NULL,
    usage_count  bigint NOT NULL DEFAULT 0,
    last_used_at bigint
);
CREATE INDEX verifier_usage_agent ON verifier_usage (agent_id);

-- Issuers as the agent service knows them. `wallet_proof` is the issuer's
-- `agents.wallet_proof` setting (platform.md 4.3 rule 4). A deleted issuer keeps its row with
-- status 'deleted' until its agents are gone (issuer_cascades).
CREATE TABLE issuers_view (
    id           text PRIMARY KEY,
    account_id   text NOT NULL,
    status       text NOT NULL,
    wallet_proof text,
    updated_at   bigint NOT NULL
);

CREATE TABLE issuer_cascades (
    issuer_id    text PRIMARY KEY,
    account_id   text NOT NULL,
    requested_at bigint NOT NULL
);

CREATE TABLE organizations_seen (
    id        text PRIMARY KEY,
    issuer_id text NOT NULL,
    status    text NOT NULL
);

CREATE TABLE agent_memberships_view (
    org_id        text NOT NULL,
    agent_id      text NOT NULL,
    issuer_id     text NOT NULL,
    status        text NOT NULL,
    status_reason text,
    status_by     text,
    scopes        jsonb NOT NULL DEFAULT '[]',
    groups        jsonb NOT NULL DEFAULT '[]',
    user_title    text,
    metadata      jsonb NOT NULL DEFAULT '{}',
    joined_at     bigint NOT NULL,
    updated_at    bigint,
    PRIMARY KEY (org_id, agent_id)
);
CREATE INDEX agent_memberships_view_agent ON agent_memberships_view (agent_id);

-- Ephemeral: one-time nonces of wallet proof challenges, 10 minutes (DESIGN.md 3).
CREATE TABLE wallet_challenges (
    nonce      text PRIMARY KEY,
    agent_id   text NOT NULL,
    issuer_id  text NOT NULL,
    network    text NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX wallet_challenges_expiry ON wallet_challenges (expires_at);
