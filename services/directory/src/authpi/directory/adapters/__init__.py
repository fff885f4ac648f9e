"""I/O the write and read paths call that is neither the event store nor a view: the per-user
PII key vault (its own pii_keys table) and the DNS probe of custom domains."""
