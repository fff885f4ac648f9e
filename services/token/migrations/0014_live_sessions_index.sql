-- A user's live sessions of one type, newest first, as the 50-session cap reads them at every
-- code exchange (queries.sessions `_evictable`, `_sessions_and_evictable`) and `_live_of_type`:
-- in the index's order, so no sort, and only live rows, so no status filter; the expiry is
-- read from the index entry.
CREATE INDEX sessions_view_live ON sessions_view (issuer_id, user_id, type, created_at DESC, id DESC)
    INCLUDE (expires_at) WHERE status IN ('active', 'suspended');
