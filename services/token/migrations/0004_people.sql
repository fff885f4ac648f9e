-- People as the token service needs them for human login, learnt from the directory's events
-- (it never reads the directory's tables). token-users keeps users_view from user.* events;
-- token-organizations keeps organizations_view and memberships_view from organization.* events
-- (one consumer: an organization's memberships share its stream, and its deletion removes them).

-- A user's PII is kept only as the sealed snapshot its latest event carries (AES-GCM under the
-- user's own data key, which lives in the region's PII key store); reads open it with that key,
-- and a deleted user's snapshot is dropped (its key is destroyed anyway). No clear PII here.
CREATE TABLE users_view (
    id            text PRIMARY KEY,
    issuer_id     text NOT NULL,
    account_id    text NOT NULL,
    username_hash text NOT NULL,
    username_type text NOT NULL,
    status        text NOT NULL,
    region        text NOT NULL,
    pii           text,
    scopes        jsonb NOT NULL DEFAULT '[]',
    version       integer NOT NULL,
    created_at    bigint NOT NULL,
    updated_at    bigint
);
-- Login resolves a typed username through its hash; a deleted user's username may be reused.
CREATE INDEX users_view_username ON users_view (issuer_id, username_hash)
    WHERE status <> 'deleted';

CREATE TABLE organizations_view (
    id         text PRIMARY KEY,
    issuer_id  text NOT NULL,
    status     text NOT NULL,
    version    integer NOT NULL,
    updated_at bigint NOT NULL
);

-- User members only (agents never get an organizations claim from this service).
CREATE TABLE memberships_view (
    org_id     text NOT NULL,
    member_id  text NOT NULL,
    issuer_id  text NOT NULL,
    status     text NOT NULL,
    scopes     jsonb NOT NULL DEFAULT '[]',
    user_title text,
    joined_at  bigint NOT NULL,
    updated_at bigint,
    PRIMARY KEY (org_id, member_id)
);
CREATE INDEX memberships_view_member ON memberships_view (member_id, org_id);
