-- Each account's prepaid balance, for the 402 gate of Core API writes (platform.md 5.6). Learnt
-- from the billing service's `credit-ledger.entry-recorded` events by the `gateway-billing`
-- consumer (every entry carries the balance after it); the gateway never reads billing's tables.
CREATE TABLE account_balances_view (
    account_id text PRIMARY KEY,
    balance    bigint  NOT NULL,
    version    integer NOT NULL
);
