"""Per-process state read on the token hot path: issuers and their keys, clients, agents and
the client-authentication throttle, each loaded at start and kept current by a worker task."""
