"""Keys, digests, identifiers, the injected clock and the region's PII key store (`pii`)."""
