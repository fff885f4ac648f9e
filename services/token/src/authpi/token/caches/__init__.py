"""Per-process state read on the token hot path: issuers and their keys, and the
client-authentication throttle. The client and agent caches are the shared
`messaging.entries.EntryCache` over the folds in `reactions/clients.py` and
`reactions/agents.py`."""
