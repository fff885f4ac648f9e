-- Organization invitations as the hosted portal's invitation page needs them (core-api.md 3.15,
-- idp-api.md 12.6), learnt by token-invitations from the directory's organization.* events: the
-- page shows the organization and the inviter, and sends the invitee to sign in or sign up.
--
-- invitations_view keeps no clear address: `email_hash` is the invited address hashed like a
-- username (HMAC under the issuer's pepper), so the portal compares it with the account that
-- signs in or signs up and finds whether the address has an account (users_view), and nothing
-- else. The link's token is never stored, only the SHA-256 the events carry; a resend replaces
-- it, which ends the previous link. `status` is as recorded (pending, accepted, declined,
-- revoked); a pending invitation past `expires_at` reads as expired.
CREATE TABLE invitations_view (
    id           text PRIMARY KEY,
    org_id       text NOT NULL,
    issuer_id    text NOT NULL,
    account_id   text NOT NULL,
    email_hash   text NOT NULL,
    token_sha256 text NOT NULL,
    status       text NOT NULL,
    user_title   text,
    message      text,
    inviter      jsonb,
    accepted_by  text,
    expires_at   bigint NOT NULL,
    created_at   bigint NOT NULL,
    updated_at   bigint
);
CREATE INDEX invitations_view_token ON invitations_view (token_sha256);
CREATE INDEX invitations_view_org ON invitations_view (org_id);

-- The organization an invitation names, as the page shows and checks it: its name, whether it
-- takes invitations (`invitation_enabled`) and its status (a suspended organization freezes
-- its invitations).
CREATE TABLE invitation_orgs_view (
    id                 text PRIMARY KEY,
    issuer_id          text NOT NULL,
    name               text,
    status             text NOT NULL,
    invitation_enabled boolean NOT NULL,
    updated_at         bigint NOT NULL
);

-- Signups held for approval get their verify-email mail once approved (token-approval-mail),
-- once per user: a redelivered or replayed approval finds the row and mails nothing.
CREATE TABLE approval_mails (
    user_id   text PRIMARY KEY,
    event_id  text NOT NULL,
    mailed_at bigint NOT NULL
);
