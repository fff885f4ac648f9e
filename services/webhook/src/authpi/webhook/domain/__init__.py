"""Domain of the webhook service."""
