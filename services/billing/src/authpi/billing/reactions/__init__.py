"""reactions of the billing service."""
