"""Read-side SQL over the token service's own tables."""
