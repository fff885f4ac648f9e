-- The region's PII key store (DESIGN.md 7): per-user data keys, wrapped by the KEK. Deleting a
-- row crypto-shreds the user's PII everywhere it was written sealed (events, views, replays,
-- redeliveries). The directory writes and deletes rows; other services only read them.
CREATE TABLE pii_keys (
    subject_id  text PRIMARY KEY,
    wrapped_key text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
