-- Agents as the directory needs them for organization memberships (platform.md 3.5), learnt from
-- the agent service's agent.* events by the durable consumer directory-agents: the directory
-- never reads the agent service's tables. A deleted agent stays as a `deleted` row, so that
-- adding it is a 404 and an older event replayed late cannot bring it back (`version` is the
-- agent stream's version of the last event applied).
CREATE TABLE agents_view (
    id         text PRIMARY KEY,
    account_id text NOT NULL,
    issuer_id  text NOT NULL,
    status     text NOT NULL,  -- active | suspended | blocked | deleted
    version    integer NOT NULL,
    updated_at bigint NOT NULL
);
