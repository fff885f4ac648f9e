"""Read-side SQL over the webhook service's own tables."""
