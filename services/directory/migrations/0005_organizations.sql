-- Organizations, their memberships and groups (inline projections of the organization stream).
-- A deleted organization keeps a tombstone row (status 'deleted') so that `status=deleted` lists
-- work while GET answers 404 (core-api.md 3.12); its memberships and groups rows are removed.
CREATE TABLE organizations_view (
    id                    text PRIMARY KEY,
    account_id            text NOT NULL,
    issuer_id             text NOT NULL,
    status                text NOT NULL,
    status_at             bigint,
    status_reason         text,
    status_by             text,
    name                  text,
    description           text,
    logo_url              text,
    org_type              text NOT NULL,
    max_members           integer,
    default_member_scopes jsonb NOT NULL DEFAULT '[]',
    invitation_enabled    boolean NOT NULL DEFAULT true,
    invitation_message    text,
    address               jsonb,
    business_details      jsonb NOT NULL DEFAULT '{}',
    contact               jsonb NOT NULL DEFAULT '{}',
    social_links          jsonb NOT NULL DEFAULT '[]',
    scopes                jsonb NOT NULL DEFAULT '[]',
    security              jsonb NOT NULL DEFAULT '{}',
    sso                   jsonb NOT NULL DEFAULT '{}',
    custom_fields         jsonb NOT NULL DEFAULT '{}',
    metadata              jsonb NOT NULL DEFAULT '{}',
    version               integer NOT NULL,
    created_at            bigint NOT NULL,
    updated_at            bigint
);
CREATE INDEX organizations_view_issuer ON organizations_view (account_id, issuer_id, created_at DESC, id DESC);
CREATE INDEX organizations_view_deleting ON organizations_view (status) WHERE status = 'deleting';

CREATE TABLE members_view (
    org_id        text NOT NULL,
    member_id     text NOT NULL,
    member_type   text NOT NULL,
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
    PRIMARY KEY (org_id, member_id)
);
CREATE INDEX members_view_member ON members_view (member_id);

CREATE TABLE groups_view (
    id          text PRIMARY KEY,
    org_id      text NOT NULL,
    issuer_id   text NOT NULL,
    name        text NOT NULL,
    description text,
    scopes      jsonb NOT NULL DEFAULT '[]',
    metadata    jsonb NOT NULL DEFAULT '{}',
    created_at  bigint NOT NULL,
    updated_at  bigint
);
CREATE INDEX groups_view_org ON groups_view (org_id, created_at DESC, id DESC);
