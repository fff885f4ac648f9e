-- The federated sign-in through an organization's upstream OpenID Provider (core-api.md 3.16).
--
-- organizations_view learns the whole `sso` object (the upstream's issuer URL, client id,
-- scopes and client authentication method) from organization.created / organization.updated
-- and organization.sso.*, and the SSO client secret as the events carry it: wrapped by the
-- key-encryption key (never in clear), unwrapped only to call the upstream's token endpoint.
ALTER TABLE organizations_view
    ADD COLUMN sso jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN sso_client_secret text;

-- One row per sign-in sent to an upstream (ephemeral, 10 minutes, single use): it binds the
-- `state` the upstream echoes (only its SHA-256 here) to the organization, the authorization
-- flow to continue, the browser that started it (the SHA-256 of its `authpi_sso` cookie), and
-- the `nonce` and PKCE `code_verifier` of the upstream request.
CREATE TABLE sso_logins (
    state_sha256   text PRIMARY KEY,
    issuer_id      text NOT NULL,
    org_id         text NOT NULL,
    flow_id        text,
    browser_sha256 text NOT NULL,
    data           jsonb NOT NULL,
    expires_at     bigint NOT NULL,
    used_at        bigint
);
CREATE INDEX sso_logins_expiry ON sso_logins (expires_at);

-- Rows written before this version lack the `sso` object and the secret: token-organizations
-- rebuilds from the first event of the events stream (as 0007 did; README, upgrading), or, for
-- a stream that no longer starts there, `authpi replay token-organizations`.
TRUNCATE organizations_view, memberships_view, sso_domains_view;
DELETE FROM checkpoints WHERE consumer = 'token-organizations';
