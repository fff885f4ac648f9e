-- The SSO domains of organizations (core-api.md 3.16): added unverified, verified by a DNS TXT
-- challenge. A verified domain routes its addresses to one organization of the issuer.
CREATE TABLE org_sso_domains_view (
    org_id      text   NOT NULL,
    issuer_id   text   NOT NULL,
    domain      text   NOT NULL,
    created_at  bigint NOT NULL,
    verified_at bigint,
    PRIMARY KEY (org_id, domain)
);

CREATE INDEX org_sso_domains_view_verified ON org_sso_domains_view (issuer_id, domain)
    WHERE verified_at IS NOT NULL;
