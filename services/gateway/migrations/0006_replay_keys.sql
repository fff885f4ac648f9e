-- Per-user keys for the stored bodies of idempotency replays about a user (DESIGN.md 7). A replay
-- of a user create or update holds the user's email and profile; sealing it under a key of its
-- own, destroyed with the user by `gateway-directory` on `user.deleted`, makes every copy of it
-- (the row, its dead tuples, WAL, backups) unreadable once the user is deleted.
CREATE TABLE replay_keys (
    resource_id text PRIMARY KEY,
    wrapped_key text NOT NULL
);
