"""The webhook service's write paths."""
