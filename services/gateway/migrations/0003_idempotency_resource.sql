-- The resource a stored replay is about (the path's user, else the response's `id`), so that the
-- replays holding a user's data are purged when the user is deleted (DESIGN.md 7).
ALTER TABLE idempotency_keys ADD COLUMN resource_id text;
CREATE INDEX idempotency_keys_resource ON idempotency_keys (resource_id)
    WHERE resource_id IS NOT NULL;
