-- Organization invitations (core-api.md 3.15; inline projection of the organization streams).
-- `status` is the recorded one (pending, accepted, declined, revoked): reads report a pending
-- invitation past `expires_at` as `expired`. `token_sha256` is the digest of the current link's
-- token, the lookup of the portal's accept page; the token itself is stored nowhere.
CREATE TABLE invitations_view (
    id                 text PRIMARY KEY,
    org_id             text    NOT NULL,
    issuer_id          text    NOT NULL,
    status             text    NOT NULL,
    email_invited      text    NOT NULL,
    user_id_invited    text,
    user_title         text,
    message            text,
    scopes             jsonb   NOT NULL DEFAULT '[]',
    inviter            jsonb,
    metadata           jsonb   NOT NULL DEFAULT '{}',
    token_sha256       text    NOT NULL,
    created_at         bigint  NOT NULL,
    expires_at         bigint  NOT NULL,
    accepted_at        bigint,
    declined_at        bigint,
    revoked_at         bigint,
    last_email_sent_at bigint,
    updated_at         bigint
);
CREATE INDEX invitations_view_org ON invitations_view (org_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX invitations_view_token ON invitations_view (token_sha256);
