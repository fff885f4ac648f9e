-- The signup approval queue (core-api.md 3.10): each user's approval record (null for users that
-- never waited), and a partial index over the users waiting, oldest signup first.
ALTER TABLE users_view ADD COLUMN approval jsonb;

CREATE INDEX users_view_pending_approval ON users_view (issuer_id, created_at, id)
    WHERE status = 'pending_approval';
