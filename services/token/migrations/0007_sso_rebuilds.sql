-- Organization SSO for discovery (idp-api.md 10.2), and a rebuild of two projections whose rows
-- were written before they held what human login reads.
--
-- organizations_view learns each organization's `sso` object (enabled, sso_only, connection
-- type) from organization.created / organization.updated; sso_domains_view holds the domains
-- the directory verified (organization.sso.domain-verified, until domain-deleted or the
-- organization's deletion). Discovery routes an address only to an active organization with
-- SSO enabled and a verified domain equal to the address's domain.
ALTER TABLE organizations_view
    ADD COLUMN sso_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN sso_only boolean NOT NULL DEFAULT false,
    ADD COLUMN sso_connection_type text;

CREATE TABLE sso_domains_view (
    issuer_id   text NOT NULL,
    domain      text NOT NULL,
    org_id      text NOT NULL,
    verified_at bigint NOT NULL,
    PRIMARY KEY (issuer_id, domain, org_id)
);
CREATE INDEX sso_domains_view_org ON sso_domains_view (org_id);

-- Rows written before this version lack the new columns (organizations) and the human-login
-- fields of a client (redirect and post-logout URIs, name, response types, TTLs, organization
-- restriction: an older clients_view entry decodes with empty defaults). Emptying the views and
-- their consumers' checkpoints makes token-organizations and token-clients (and every worker's
-- client cache, which loads clients_view with its checkpoint) rebuild from the first event of
-- the events stream, which keeps every event (deploy/nats/events-stream.json: no age or size
-- limit). A deployment whose stream no longer starts at the first event rebuilds them from the
-- directory's event store instead: `authpi replay token-clients` and
-- `authpi replay token-organizations` (README, upgrading).
TRUNCATE organizations_view, memberships_view, clients_view;
DELETE FROM checkpoints WHERE consumer IN ('token-organizations', 'token-clients');
