-- The billing fields of the Account object (platform.md 5.2): each account's balance and its
-- payment methods (removed ones too, with removed_at), learnt from the billing service's events
-- by the `directory-billing` consumer. The directory never reads billing's tables.
CREATE TABLE account_billing_view (
    account_id text PRIMARY KEY,
    balance    bigint  NOT NULL,
    version    integer NOT NULL
);

CREATE TABLE account_payment_methods_view (
    id         text PRIMARY KEY,
    account_id text    NOT NULL,
    method     jsonb   NOT NULL,
    created_at bigint  NOT NULL,
    version    integer NOT NULL
);
CREATE INDEX account_payment_methods_view_account
    ON account_payment_methods_view (account_id, created_at, id);
