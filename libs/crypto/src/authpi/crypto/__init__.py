"""Keys, digests, identifiers and the injected clock."""
