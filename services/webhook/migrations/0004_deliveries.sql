-- Webhook deliveries (platform.md 7.4-7.10): one record per (webhook, event), created by the
-- fan-out from the audit log in event order, and the log of every attempt made for it.
--
-- The dispatcher (one per deployment) claims due records (`claimed`), attempts them and writes
-- the outcomes in batches. A claim lives only as long as the dispatcher that made it: the next
-- one clears every claim at start, so an attempt whose outcome was never written is made again
-- (at least once), and the record itself is never created twice (UNIQUE (webhook_id, event_id)).
CREATE TABLE deliveries (
    seq                  bigint GENERATED ALWAYS AS IDENTITY,  -- fan-out order = event order
    id                   text    PRIMARY KEY,                  -- dlv_…, stable across attempts
    webhook_id           text    NOT NULL,
    account_id           text    NOT NULL,
    event_id             text    NOT NULL,                     -- evt_… (audit_events.id)
    event_type           text    NOT NULL,
    audit_seq            bigint  NOT NULL,
    occurred_at          bigint  NOT NULL,
    status               text    NOT NULL,   -- pending | succeeded | failed | cancelled
    attempt_count        int     NOT NULL DEFAULT 0,  -- every attempt, manual ones included
    scheduled_attempts   int     NOT NULL DEFAULT 0,  -- attempts counted against the budget
    attempt_budget       int     NOT NULL,
    first_attempted_at   bigint,
    last_attempted_at    bigint,
    next_attempt_at      bigint,
    held                 boolean NOT NULL DEFAULT false,  -- by the circuit breaker (7.7)
    claimed              boolean NOT NULL DEFAULT false,  -- in the dispatcher's hands
    last_error           text,
    last_response_status int,
    created_at           bigint  NOT NULL,
    updated_at           bigint,
    CONSTRAINT deliveries_once UNIQUE (webhook_id, event_id)
);
-- What the dispatcher claims: due, not held, not claimed; first attempts in event order.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, seq)
    WHERE status = 'pending' AND NOT held AND NOT claimed;
-- Held and pending records of one webhook (probes, release, cancel).
CREATE INDEX deliveries_pending ON deliveries (webhook_id, seq) WHERE status = 'pending';
-- The delivery log, newest first.
CREATE INDEX deliveries_log ON deliveries (webhook_id, created_at DESC, id DESC);

CREATE TABLE delivery_attempts (
    delivery_id     text    NOT NULL,
    attempt         int     NOT NULL,
    attempted_at    bigint  NOT NULL,
    duration_ms     int     NOT NULL,
    success         boolean NOT NULL,
    response_status int,
    error           text,
    response_body   text,               -- at most 4 KiB
    manual          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (delivery_id, attempt)
);
-- Response bodies are kept for 30 days (7.8, OP-17): the sweep finds the old ones here.
CREATE INDEX delivery_attempts_bodies ON delivery_attempts (attempted_at)
    WHERE response_body IS NOT NULL;

-- The circuit breaker's memory per webhook (7.7): consecutive failed attempts across
-- deliveries, when the circuit opened, when the next probe is due.
CREATE TABLE webhook_circuits (
    webhook_id  text   PRIMARY KEY,
    failures    int    NOT NULL DEFAULT 0,
    opened_at   bigint,
    probe_at    bigint
);

-- Wake the dispatcher at commit (one notification per transaction and channel).
CREATE FUNCTION deliveries_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_deliveries', '');
    RETURN NULL;
END $$;
CREATE TRIGGER deliveries_notify AFTER INSERT ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION deliveries_notify();
