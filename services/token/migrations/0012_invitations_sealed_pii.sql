-- The invitation page's personal data stays sealed (DESIGN.md 7): the directory's
-- organization.invitation.* events carry the inviter and the message (with the invited address)
-- only as `pii`, sealed under the invitation's own data key, which the directory destroys when
-- the invitation is revoked or declined. The row keeps that snapshot and the region whose PII
-- key store holds the key (the event's metadata), and the page opens it on read.
--
-- `message` and `inviter` remain for rows learnt from events written before sealing, which
-- carried them in clear; an invitation that ends (revoked or declined) loses them, and so does
-- every such row that already ended.
ALTER TABLE invitations_view
    ADD COLUMN pii text,
    ADD COLUMN region text NOT NULL DEFAULT 'default';

UPDATE invitations_view SET message = NULL, inviter = NULL
WHERE status IN ('revoked', 'declined') AND (message IS NOT NULL OR inviter IS NOT NULL);
-- A rewrite, so that the row versions the UPDATE left behind go with the old heap file.
CLUSTER invitations_view USING invitations_view_pkey;
