-- Idempotency records belong to one principal (DESIGN.md 7, "Privilege inside an account"): an
-- API key, a personal token or a console user. Keyed by account alone, a second key of the same
-- account that reused an Idempotency-Key and body got the first key's stored response, one-time
-- secret included. Records made before this change cannot be attributed to a principal: they
-- are dropped (a retry of such a request runs again).
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys ADD COLUMN principal_id text NOT NULL;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (scope_id, principal_id, key);
