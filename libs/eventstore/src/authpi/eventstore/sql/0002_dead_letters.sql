-- Dead letters say what they hold: the event type (for alerts and metrics labels) and whether
-- it is a security event (a revocation, a deletion), which retention never sweeps unresolved.
ALTER TABLE dead_letters
    ADD COLUMN event_type text,
    ADD COLUMN security   boolean NOT NULL DEFAULT false;

CREATE INDEX dead_letters_recorded_at ON dead_letters (recorded_at);
