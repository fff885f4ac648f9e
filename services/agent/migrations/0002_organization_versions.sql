-- agent-memberships applies an organization's events only in its stream's version order: the
-- version of the last event applied per organization (organizations_seen.version), so that a
-- late or replayed older event (a membership created before it was deleted) changes nothing.
-- A deleted organization stays as a `deleted` row for the same reason.
ALTER TABLE organizations_seen ADD COLUMN version integer NOT NULL DEFAULT 0;
