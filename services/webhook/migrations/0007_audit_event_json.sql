-- The audit log keeps each public event as the JSON text it was written as (`json`), no longer as
-- `jsonb`. Nothing queries inside the column: it is written once per row and read back whole, as
-- text, by the Events API, the public-stream relay and the webhook fan-out, once per row each.
-- `jsonb` parsed every row into its binary form on insert and printed it back to text on every
-- read; `json` checks the text once and hands it back as stored (about 5 us of PostgreSQL a row
-- less, and every token issued is a row). A row written before keeps the text its jsonb printed;
-- `jsonb` values still insert (the cast is an assignment cast). The change rewrites the table
-- once, under its lock.
ALTER TABLE audit_events ALTER COLUMN event TYPE json;
