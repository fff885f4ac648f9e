-- The audit log (platform.md 6.1, 8): one row per public event, written by the audit-log consumers
-- of the domain events and the facts. It is append-only, and it is the outbox of everything
-- downstream: the Events API pages it, the public-stream relay and the webhook fan-out tail it.
--
-- Order: (tx_id, seq). Two consumers write it, so a row may commit after a row with a higher seq;
-- readers see only rows below the snapshot xmin (as the event relay does), which makes the
-- visible set grow only at its end: a cursor over (tx_id, seq) never skips and never repeats.
CREATE TABLE audit_events (
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    tx_id       xid8   NOT NULL DEFAULT pg_current_xact_id(),
    id          text   PRIMARY KEY,          -- evt_… (contracts.public.public_event_id)
    account_id  text   NOT NULL,
    type        text   NOT NULL,
    occurred_at bigint NOT NULL,             -- the event's timestamp, whole Unix ms
    issuer_id   text,
    user_id     text,
    client_id   text,
    agent_id    text,
    org_id      text,
    event       jsonb  NOT NULL              -- the public event object (contracts.public.PublicEvent)
);
CREATE UNIQUE INDEX audit_events_commit_order ON audit_events (tx_id, seq);
CREATE INDEX audit_events_account_order ON audit_events (account_id, tx_id, seq);

CREATE FUNCTION audit_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();

-- Wake the tailers at commit (one notification per transaction and channel).
CREATE FUNCTION audit_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_audit', '');
    RETURN NULL;
END $$;
CREATE TRIGGER audit_events_notify AFTER INSERT ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_notify();

-- Durable cursors of the tailers (the public-stream relay, the webhook fan-out), by name.
CREATE TABLE audit_cursors (
    name       text   PRIMARY KEY,
    tx_id      xid8   NOT NULL DEFAULT '0'::xid8,
    seq        bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
