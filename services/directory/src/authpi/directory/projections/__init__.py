"""Directory read models."""
