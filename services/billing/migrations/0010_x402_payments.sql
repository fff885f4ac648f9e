-- x402 payments taken on by this service (platform.md 5.8 step 8: the local replay store). A row
-- is claimed for (network, asset, payer, nonce) before anything is sent to the chain, so a second
-- request with the same payment is refused, then follows the payment: claimed -> sent (tx hash
-- known) -> settled (receipt) -> credited (the ledger's top-up entry), or failed. A row left
-- open by a crash is finished by the recovery task, which finds the settlement on chain by its
-- nonce (the token's AuthorizationUsed log) and credits it through the ledger's idempotent top-up.
-- The row is the settlement attempt's record, like a delivery attempt; the ledger's events stay
-- the record of the money. Addresses are lowercase.
CREATE TABLE x402_payments (
    network       text    NOT NULL,
    asset         text    NOT NULL,
    payer         text    NOT NULL,
    nonce         text    NOT NULL,
    account_id    text    NOT NULL,
    method_id     text,
    pay_to        text    NOT NULL,
    value         numeric NOT NULL,
    version       integer NOT NULL,
    auth          jsonb   NOT NULL,
    signature     text    NOT NULL,
    status        text    NOT NULL,
    reason        text,
    tx_hash       text,
    entry_id      text,
    created_at    bigint  NOT NULL,
    updated_at    bigint  NOT NULL,
    PRIMARY KEY (network, asset, payer, nonce)
);
CREATE INDEX x402_payments_open ON x402_payments (created_at)
    WHERE status IN ('claimed', 'sent', 'settled');
