-- invitations_view keeps no clear personal data at rest (DESIGN.md 7). The invited address, the
-- inviter and the message live only in `pii`, the AES-GCM snapshot sealed under the invitation's
-- own data key in the region's PII key store (the same `pii` token the invitation's events
-- carry), and the address's lookups use `email_hash` (the HMAC a username of that address has in
-- the issuer). Reads open `pii` with the key; revoking or declining the invitation, deleting its
-- organization or the user who accepted it destroys the key, so every copy becomes unreadable.
ALTER TABLE invitations_view
    ADD COLUMN email_hash text,
    ADD COLUMN pii text;

-- The clear columns go, and CLUSTER rewrites the table into a new file (a rewrite nulls dropped
-- columns and leaves no dead tuples behind), so the old heap file with clear row versions is
-- unlinked at commit. WAL written before this migration and backups taken before it still hold
-- them: let them expire.
--
-- Rows written before this migration then have neither `pii` nor `email_hash`. A key can only
-- be made and a value sealed with the KEK, which SQL never sees: at start, before serving, the
-- directory seals each such row that is still pending or accepted from its invitation's events
-- (which hold the clear values: an append-only store is not rewritten), under a new key of its
-- own (`handlers.invitation_pii.seal_legacy_invitations`). A revoked or declined one stays
-- without them: its address must not become readable again.
ALTER TABLE invitations_view
    DROP COLUMN email_invited,
    DROP COLUMN message,
    DROP COLUMN inviter;
CLUSTER invitations_view USING invitations_view_pkey;

