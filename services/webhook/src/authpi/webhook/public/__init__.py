"""Public of the webhook service."""
