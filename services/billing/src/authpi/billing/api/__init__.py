"""api of the billing service."""
