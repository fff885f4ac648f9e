"""The gateway's consumers of other services' events, each into the gateway's own tables."""
