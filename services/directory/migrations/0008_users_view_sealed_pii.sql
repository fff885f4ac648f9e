-- users_view keeps no clear PII at rest (DESIGN.md 7). Every row version PostgreSQL writes (live
-- rows, dead tuples left by UPDATE and DELETE, WAL, backups and replicas) holds the user's PII
-- only as the AES-GCM snapshot sealed under the user's own data key: the same `pii` token the
-- user's last `user.created` / `user.updated` event carries. Reads decrypt it with the key from
-- pii_keys; deleting the user destroys that key, so every copy becomes unreadable at once.
ALTER TABLE users_view ADD COLUMN pii text;

-- Existing rows take the sealed snapshot of their stream's latest PII-carrying event; deleted
-- users get none.
UPDATE users_view u SET pii = latest.pii
FROM (
    SELECT DISTINCT ON (stream_id) stream_id, data ->> 'pii' AS pii
    FROM events
    WHERE type IN ('user.created', 'user.updated') AND data ->> 'pii' IS NOT NULL
    ORDER BY stream_id, stream_version DESC
) AS latest
WHERE latest.stream_id = u.id AND u.status <> 'deleted';

-- The clear columns go, and CLUSTER rewrites the table into a new file (a rewrite nulls dropped
-- columns and leaves dead tuples behind), so the old heap file with clear row versions is
-- unlinked at commit. WAL written before this migration and backups taken before it still hold
-- them: let them expire.
ALTER TABLE users_view
    DROP COLUMN username,
    DROP COLUMN profile,
    DROP COLUMN custom_fields,
    DROP COLUMN addresses;
CLUSTER users_view USING users_view_pkey;
