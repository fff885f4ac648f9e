"""AuthPI web."""
