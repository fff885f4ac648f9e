"""Api of the webhook service."""
