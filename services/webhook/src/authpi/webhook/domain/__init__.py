"""Pure deciders and rules of the webhook service (the Webhook aggregate, URL rules)."""
