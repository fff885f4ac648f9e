"""Core API controllers of the directory service."""
