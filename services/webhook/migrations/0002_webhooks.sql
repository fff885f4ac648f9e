-- Webhooks (platform.md 7.1, 7.2). webhooks_view is the inline projection of the webhook streams
-- (same transaction as the events); a deleted webhook keeps its row with status 'deleted' (soft
-- delete, listable with status=deleted). `events` NULL = every type; `subjects` NULL = no subject
-- filter; `retry` / `circuit_breaker` NULL = the defaults.
CREATE TABLE webhooks_view (
    id              text PRIMARY KEY,
    account_id      text NOT NULL,
    name            text NOT NULL,
    description     text,
    url             text NOT NULL,
    status          text NOT NULL,           -- active | disabled | failing | deleted
    status_at       bigint,
    status_reason   text,
    status_by       text,
    auth_type       text NOT NULL,
    auth            jsonb NOT NULL,          -- contracts.webhook.WebhookAuthInfo (hints only)
    events          jsonb,
    subjects        jsonb,
    retry           jsonb,
    circuit_breaker jsonb,
    metadata        jsonb NOT NULL DEFAULT '{}',
    stream_version  integer NOT NULL,
    created_at      bigint NOT NULL,
    updated_at      bigint
);
CREATE INDEX webhooks_view_account ON webhooks_view (account_id, created_at DESC, id DESC);

-- Every change of a webhook wakes the delivery engine's target cache at commit (payload: the
-- webhook id), replays included.
CREATE FUNCTION webhooks_view_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_webhooks', coalesce(NEW.id, OLD.id));
    RETURN NULL;
END $$;
CREATE TRIGGER webhooks_view_notify AFTER INSERT OR UPDATE OR DELETE ON webhooks_view
    FOR EACH ROW EXECUTE FUNCTION webhooks_view_notify();

-- The secrets themselves, never in an event: signing secrets (`whs_…`) and bearer tokens, each
-- sealed with a data key wrapped by the KEK (authpi.crypto.envelope), written in the same
-- transaction as the event that issues them. A regenerated signing secret keeps signing in
-- parallel until `retires_at` (24 hours, platform.md 7.1); a deleted webhook's rows are deleted
-- (crypto-shredding).
CREATE TABLE webhook_secrets (
    webhook_id  text   NOT NULL,
    kind        text   NOT NULL,             -- signature | bearer
    serial      integer NOT NULL,            -- the webhook's stream version that issued it
    wrapped_key text   NOT NULL,             -- the data key, wrapped by the KEK
    sealed      text   NOT NULL,             -- the secret, sealed with the data key
    hint        text   NOT NULL,
    created_at  bigint NOT NULL,
    retires_at  bigint,                      -- NULL: current
    PRIMARY KEY (webhook_id, kind, serial)
);
