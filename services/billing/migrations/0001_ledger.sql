-- The billing service's read models. ledger_entries_view, balances_view and
-- payment_methods_view are inline projections of the credit-ledger streams (same transaction as
-- the events). usage_hours is the metering consumer's aggregate of the batched facts, written in
-- the transaction that stores the consumer's stream sequence; an hour is closed into exactly one
-- usage entry (closed_entry_id), in the transaction that appends that entry.
CREATE TABLE ledger_entries_view (
    entry_id           text PRIMARY KEY,
    account_id         text   NOT NULL,
    seq                bigint NOT NULL,
    type               text   NOT NULL,
    amount             bigint NOT NULL,
    balance_after      bigint NOT NULL,
    operation          text,
    reference          text,
    related_entry_id   text,
    expires_at         bigint,
    dimension          text,
    config_version     text,
    external_reference text,
    settled_total      bigint,
    count              bigint,
    method_id          text,
    period             text,
    hour               bigint,
    created_at         bigint NOT NULL
);
CREATE INDEX ledger_entries_view_account ON ledger_entries_view (account_id, seq DESC);
CREATE INDEX ledger_entries_view_period ON ledger_entries_view (account_id, period)
    WHERE type = 'usage';

CREATE TABLE balances_view (
    account_id text PRIMARY KEY,
    balance    bigint NOT NULL,
    entries    bigint NOT NULL,
    updated_at bigint NOT NULL
);

CREATE TABLE payment_methods_view (
    id           text PRIMARY KEY,
    account_id   text    NOT NULL,
    type         text    NOT NULL,
    enabled      boolean NOT NULL,
    network      text    NOT NULL,
    asset        text    NOT NULL,
    payer        text,
    topup_amount bigint  NOT NULL,
    created_at   bigint  NOT NULL,
    disabled_at  bigint,
    removed_at   bigint,
    updated_at   bigint
);
CREATE INDEX payment_methods_view_account ON payment_methods_view (account_id, created_at, id);

CREATE TABLE usage_hours (
    account_id      text   NOT NULL,
    dimension       text   NOT NULL,
    hour            bigint NOT NULL,
    count           bigint NOT NULL,
    closed_entry_id text,
    PRIMARY KEY (account_id, dimension, hour)
);
CREATE INDEX usage_hours_open ON usage_hours (hour) WHERE closed_entry_id IS NULL;
