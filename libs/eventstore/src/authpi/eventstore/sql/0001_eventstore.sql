-- The event store of one service schema (STYLE.md 7). Applied with search_path set to the schema.
CREATE TABLE events (
    position       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id       uuid        NOT NULL UNIQUE,
    stream_id      text        NOT NULL,
    stream_version integer     NOT NULL CHECK (stream_version > 0),
    type           text        NOT NULL,
    schema_version smallint    NOT NULL DEFAULT 1,
    data           jsonb       NOT NULL,
    meta           jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, stream_version)
);
-- The relay reads in (tx_id, position) order below the snapshot xmin.
CREATE INDEX events_commit_order ON events (tx_id, position);

-- Append-only, enforced by the database itself: no UPDATE, DELETE or TRUNCATE, whoever asks.
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only (% refused)', TG_OP USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- Wake the relay at commit (NOTIFY is delivered on commit; one per transaction and channel).
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_events', '');
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();

-- The relay's durable cursor: the last published (tx_id, position).
CREATE TABLE relay_cursor (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    tx_id      xid8    NOT NULL DEFAULT '0'::xid8,
    position   bigint  NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO relay_cursor DEFAULT VALUES;

-- Consumer checkpoints, written in the same transaction as the projection change. `source` is the
-- publishing service; (last_tx, last_position) is that service's commit order, so a duplicate
-- published after JetStream's dedup window is still recognised.
CREATE TABLE checkpoints (
    consumer      text   NOT NULL,
    source        text   NOT NULL,
    last_seq      bigint NOT NULL DEFAULT 0,
    last_tx       xid8   NOT NULL DEFAULT '0'::xid8,
    last_position bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, source)
);

CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer    text   NOT NULL,
    stream_seq  bigint NOT NULL,
    subject     text   NOT NULL,
    event_id    text,
    error       text   NOT NULL,
    payload     bytea  NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Unique facts claimed in the same transaction as the events that need them (STYLE.md 6).
CREATE TABLE reservations (
    scope      text NOT NULL,
    key        text NOT NULL,
    owner      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
