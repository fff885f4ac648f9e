"""Read-side SQL over the billing service's own tables."""
