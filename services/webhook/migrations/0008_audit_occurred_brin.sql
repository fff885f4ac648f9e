-- The retention sweep's index on `occurred_at` as a BRIN index instead of a b-tree. Rows come in
-- nearly in time order (each is written within moments of its event), so each block range of the
-- table holds a narrow span of times and a BRIN index finds the old ones as well for a sweep that
-- runs once an hour; on insert it costs next to nothing, where the b-tree took an index insertion
-- for every row, and every token issued is a row. The Events API's time windows use
-- audit_events_account_window, not this index. Ranges are summarized as they fill
-- (autosummarize), so a sweep does not recheck the table's newest pages.
DROP INDEX audit_events_occurred;
CREATE INDEX audit_events_occurred ON audit_events USING brin (occurred_at)
    WITH (autosummarize = on);
