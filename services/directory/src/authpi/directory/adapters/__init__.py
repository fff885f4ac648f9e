"""I/O the write and read paths call that is neither the event store nor a view: the DNS probe
of custom domains. (The per-user PII keys live in the region's PII key store,
`authpi.crypto.pii`.)"""
