-- The Events API (platform.md 8) over the audit log: one index per filter, each ending in the
-- commit order (tx_id, seq), so that a page, filtered or not, is an index range scan from the
-- cursor that stops after `limit` rows, whatever the log's size. Partial: a row without the key
-- is never looked up by it. `occurred_at` serves the retention sweep.
CREATE INDEX audit_events_issuer_order ON audit_events (account_id, issuer_id, tx_id, seq)
    WHERE issuer_id IS NOT NULL;
CREATE INDEX audit_events_user_order ON audit_events (account_id, user_id, tx_id, seq)
    WHERE user_id IS NOT NULL;
CREATE INDEX audit_events_client_order ON audit_events (account_id, client_id, tx_id, seq)
    WHERE client_id IS NOT NULL;
CREATE INDEX audit_events_agent_order ON audit_events (account_id, agent_id, tx_id, seq)
    WHERE agent_id IS NOT NULL;
CREATE INDEX audit_events_org_order ON audit_events (account_id, org_id, tx_id, seq)
    WHERE org_id IS NOT NULL;
CREATE INDEX audit_events_type_order ON audit_events (account_id, type, tx_id, seq);
CREATE INDEX audit_events_occurred ON audit_events (occurred_at);
