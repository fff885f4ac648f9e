-- The Events API's `after`/`before` window (platform.md 8): the account's rows by time, carrying
-- their commit position. A page of a window is the window's top in commit order; with this index
-- a window is found by time and its (tx_id, seq) read from the index alone, top-N sorted, and
-- only the page's rows fetched whole. queries.events takes this path when the window is narrow or
-- lies deep in the log (it counts both here); otherwise it walks the commit order as before.
CREATE INDEX audit_events_account_window ON audit_events (account_id, occurred_at)
    INCLUDE (tx_id, seq);
