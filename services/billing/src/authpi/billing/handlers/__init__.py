"""handlers of the billing service."""
