-- An account's custom domains (core-api.md 3.3; inline projection of the account stream). A host
-- belongs to one account at most: the `domain` reservation enforces it in the write transaction.
CREATE TABLE account_domains_view (
    host               text PRIMARY KEY,
    account_id         text NOT NULL,
    verified           boolean NOT NULL DEFAULT false,
    is_primary         boolean NOT NULL DEFAULT false,
    added_at           bigint NOT NULL,
    assigned_issuer_id text,
    assigned_at        bigint
);
CREATE INDEX account_domains_view_account ON account_domains_view (account_id, added_at, host);
