-- Integrator credentials (issue 12): the inline projection of the IntegratorCredential streams
-- (same transaction as the events). Each row is one NATS user of the public event stream; the
-- password is kept as its bcrypt digest, which nats-server checks itself. A revoked credential
-- keeps its row with status 'revoked' and is left out of the NATS authorization.
CREATE TABLE integrator_credentials_view (
    id              text PRIMARY KEY,            -- intc_…
    account_id      text NOT NULL,
    nats_user       text NOT NULL UNIQUE,        -- int_…: also its durable consumer's name
    password_bcrypt text NOT NULL,
    name            text NOT NULL DEFAULT '',
    status          text NOT NULL,               -- active | revoked
    issued_at       bigint NOT NULL,
    revoked_at      bigint,
    stream_version  integer NOT NULL
);
CREATE INDEX integrator_credentials_view_account
    ON integrator_credentials_view (account_id, issued_at, id);

-- Every change wakes the process that renders the embedded NATS server's authorization (payload:
-- the credential id), replays included; a TRUNCATE (the start of a replay) too.
CREATE FUNCTION integrator_credentials_view_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_integrators', coalesce(NEW.id, OLD.id, ''));
    RETURN NULL;
END $$;
CREATE TRIGGER integrator_credentials_view_notify
    AFTER INSERT OR UPDATE OR DELETE ON integrator_credentials_view
    FOR EACH ROW EXECUTE FUNCTION integrator_credentials_view_notify();
CREATE TRIGGER integrator_credentials_view_truncated
    AFTER TRUNCATE ON integrator_credentials_view
    FOR EACH STATEMENT EXECUTE FUNCTION integrator_credentials_view_notify();
