-- Organizations that are not active, learnt by `gateway-directory` from `organization.*` events
-- (DESIGN.md 2): their organization-level API keys stop authenticating (core-api.md 7, open point
-- 11) while suspended, being deleted or deleted, and work again on reactivation. Active
-- organizations have no row. Suspensions made before this table existed are not in it until the
-- projection is replayed (`authpi replay gateway-directory`).
CREATE TABLE inactive_organizations_view (
    id       text PRIMARY KEY,
    status   text NOT NULL,
    version  integer NOT NULL
);
